"""The report: reads results files only (never re-runs anything) and renders
report.html (self-contained, images embedded), summary.md and trace.json."""

from .build import write_report  # noqa: F401
from .data import ReportInputError, load_run  # noqa: F401

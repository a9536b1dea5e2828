"""Terminal output of `simnet run`: rich progress bars with ETA, and the summary table.

The summary table must stay readable where stdout is a log file or a pipe (CI): there rich
would assume 80 columns and truncate every cell, so a non-terminal console is 120 columns
wide (or $COLUMNS) and the table uses short headers and compact compressor labels.
"""

from __future__ import annotations

import os
import sys
import time

from rich import box
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from .data import short_label

__all__ = ["RichProgress", "print_summary", "stdout_console"]


class RichProgress:
    """engine.Progress callbacks drawn as rich bars on stderr (nothing when quiet).

    Where stderr is not a terminal (logs, CI) bars would not animate: print one line per
    finished task instead, with its duration.
    """

    def __init__(self, console: Console, quiet: bool):
        self.console, self.quiet = console, quiet
        self.live = console.is_terminal and not quiet
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("iterations ·"), TimeElapsedColumn(),
                            TextColumn("· ETA"), TimeRemainingColumn(), console=console,
                            transient=True) if self.live else None
        self.tasks: dict[str, int] = {}
        self.started: dict[str, float] = {}

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def start(self, label: str, total: int) -> None:
        self.started[label] = time.perf_counter()
        if self.bar:
            head, _, tail = label.partition(" ")  # "train qsgd(levels=7,...)" -> "train qsgd s=7"
            self.tasks[label] = self.bar.add_task(f"{head} {short_label(tail)}".strip(), total=total)

    def advance(self, label: str, done: int) -> None:
        if self.bar and label in self.tasks:
            self.bar.update(self.tasks[label], completed=done)

    def finish(self, label: str) -> None:
        seconds = time.perf_counter() - self.started.pop(label, time.perf_counter())
        if self.bar and label in self.tasks:
            self.bar.remove_task(self.tasks.pop(label))
        if not self.quiet:
            self.console.print(f"[green]✓[/] {label} ({seconds:.1f} s)", highlight=False)


def stdout_console() -> Console:
    """A console for stdout: the terminal's width, or 120 columns ($COLUMNS) when piped."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=int(os.environ.get("COLUMNS") or 120), force_terminal=False)


def print_summary(rows: list[dict], target: float | None = None, console: Console | None = None) -> None:
    """One compact table per variant, then who wins, on stdout."""
    from .data import RunData
    from .page import findings
    from .tables import summary_table

    console = console or stdout_console()
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for variant in variants:
        header, body = summary_table([r for r in rows if r["variant"] == variant], compact=True)
        title = f"variant: {variant}" if len(variants) > 1 or variant != "base" else None
        table = Table(title=title, box=box.SIMPLE_HEAD, padding=0, pad_edge=False,
                      title_justify="left")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i < 2 else "right", no_wrap=i < 2)
        for r in body:
            table.add_row(*r)
        console.print(table)
    data = RunData(out=None, summary=rows, records=[], scenario={"run": {"target_accuracy": target}},
                   scenario_text="")
    for line in findings(data):
        console.print(("→ " + line) if len(variants) > 1 else "→ " + line.split(": ", 1)[1],
                      highlight=False)

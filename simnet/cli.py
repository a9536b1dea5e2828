"""The `simnet` command line: run | sweep | report | check | schema.

Exit codes: 0 success, 1 the run failed, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help=(
    "simnet: predict throughput and time-to-accuracy of data-parallel SGD with gradient "
    "compression (QSGD, QSGDinf, NUQSGD, baselines) on a simulated cluster.\n\n"
    "Example: simnet run scenarios/quickstart.yaml"))
console = Console(stderr=True)


class BadInput(Exception):
    """Raised for user errors; main() prints the message and exits 2."""


def _load(path: Path):
    from .scenario import ScenarioError, load

    try:
        return load(path)
    except ScenarioError as err:
        raise BadInput(str(err)) from None


class _RichProgress:
    def __init__(self, quiet: bool):
        self.bar = None if quiet else Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeRemainingColumn(), console=console, transient=True)
        self.tasks = {}

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def start(self, label, total):
        if self.bar:
            self.tasks[label] = self.bar.add_task(label, total=total)

    def advance(self, label, done):
        if self.bar and label in self.tasks:
            self.bar.update(self.tasks[label], completed=done)

    def finish(self, label):
        if self.bar and label in self.tasks:
            self.bar.remove_task(self.tasks.pop(label))


def _print_summary(rows: list[dict]) -> None:
    from .report.build import summary_table

    for variant in dict.fromkeys(r["variant"] for r in rows):
        header, body = summary_table([r for r in rows if r["variant"] == variant])
        table = Table(title=f"variant: {variant}")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i < 2 else "right")
        for r in body:
            table.add_row(*r)
        Console().print(table)


@app.command()
def run(scenario: Path = typer.Argument(..., help="scenario YAML file"),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="output folder (default reports/<name>)"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars, no table")):
    """Train with real compressed gradients, simulate the cluster, write results and report.

    Example: simnet run scenarios/quickstart.yaml --out reports/quickstart
    """
    from . import engine

    sc = _load(scenario)
    out = out or Path("reports") / sc.name
    try:
        with _RichProgress(quiet) as progress:
            result = engine.run(sc, out, progress=progress, source=str(scenario))
    except ValueError as err:  # configuration problems discovered while running
        raise BadInput(f"{scenario}: {err}") from None
    if not quiet:
        _print_summary(result.summary)
        console.print(f"wall time {result.wall_s:.1f} s; report: {out / 'report.html'}")


@app.command()
def sweep(scenario: Path = typer.Argument(..., help="scenario YAML file with a sweep: section"),
          out: Optional[Path] = typer.Option(None, "--out", "-o", help="output folder"),
          quiet: bool = typer.Option(False, "--quiet", "-q")):
    """Run every variant of the scenario's sweep (train once, simulate many).

    Example: simnet sweep scenarios/bandwidth_sweep.yaml
    """
    run(scenario, out, quiet)


@app.command()
def report(out_dir: Path = typer.Argument(..., help="a run's output folder")):
    """Re-render report.html, summary.md and trace.json from a run's results files.

    Example: simnet report reports/quickstart
    """
    from .report import write_report

    if not (out_dir / "summary.json").exists():
        raise BadInput(f"{out_dir}: no summary.json here; run `simnet run` first")
    console.print(f"report: {write_report(out_dir)}")


@app.command()
def check(scenario: Path = typer.Argument(..., help="scenario YAML file")):
    """Validate a scenario file (and its sweep) without running it.

    Example: simnet check scenarios/quickstart.yaml
    """
    from .scenario import ScenarioError, expand_sweep

    sc = _load(scenario)
    try:
        variants = expand_sweep(sc, str(scenario))
    except ScenarioError as err:
        raise BadInput(str(err)) from None
    console.print(f"{scenario}: ok ({len(variants)} variant(s), {len(sc.compressors)} compressor(s))")


@app.command()
def schema():
    """Print the JSON Schema of scenario files (for editor completion and checking).

    Example: simnet schema > scenario.schema.json
    """
    from .scenario import Scenario

    print(json.dumps(Scenario.model_json_schema(), indent=2))


def main() -> None:
    try:
        app(standalone_mode=False)
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # click usage errors carry their own exit code
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()

"""The `simnet` command line: run | sweep | report | check | schema.

Exit codes: 0 success; 1 the run failed (one line on stderr; --debug shows the traceback);
2 bad input (a scenario or folder the user can fix: one line naming file, field and value).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .report.terminal import RichProgress, print_summary

EXAMPLES = """Examples:

  simnet run scenarios/quickstart.yaml        (train, simulate, report)

  simnet sweep my_sweep.yaml -o reports/bw    (every variant of its sweep)

  simnet report reports/quickstart            (re-render from results files)

  simnet check scenarios/*.yaml               (validate without running)

  simnet schema > scenario.schema.json        (JSON Schema for editors)"""

app = typer.Typer(add_completion=False, no_args_is_help=True, context_settings={
    "help_option_names": ["-h", "--help"]}, help=(
    "simnet: predict throughput and time-to-accuracy of data-parallel SGD with gradient "
    "compression (QSGD, QSGDinf, NUQSGD, baselines) on a simulated cluster, from real "
    "gradients and real encoded bytes.\n\n" + EXAMPLES + "\n\nExit codes: 0 ok, 1 run failed, "
    "2 bad input."))
# Not a terminal (CI logs): rich would wrap at 80 columns mid-path; 120 reads fine in logs.
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else int(os.environ.get("COLUMNS") or 120))

QUIET = typer.Option(False, "--quiet", "-q", help="print nothing but errors (no progress, no table)")
DEBUG = typer.Option(False, "--debug", help="show the full traceback when the run fails")
OUT = typer.Option(None, "--out", "-o", help="output folder (default: reports/<scenario name>)")


class BadInput(Exception):
    """A user error: main() prints the message and exits 2."""


class RunFailed(Exception):
    """The run itself failed: main() prints one line and exits 1."""


@contextmanager
def _failures(what: str, debug: bool):
    """Turn an unexpected exception into RunFailed (one line), unless --debug."""
    from .scenario import ScenarioError

    try:
        yield
    except ScenarioError as err:
        raise BadInput(str(err)) from None
    except (BadInput, typer.Exit, KeyboardInterrupt):
        raise
    except Exception as err:
        if debug or os.environ.get("SIMNET_DEBUG"):
            raise
        raise RunFailed(f"{what} failed: {type(err).__name__}: {err} (--debug shows the traceback)") from None


def _load(path: Path):
    """Load and deeply validate a scenario: every sweep point, collective and topology."""
    from .scenario import ScenarioError, expand_sweep, load

    try:
        sc = load(path)
        variants = expand_sweep(sc, str(path))
    except ScenarioError as err:
        raise BadInput(str(err)) from None
    from . import network
    from .replay import topology_spec
    from .training import choose_collective

    for v in variants:
        where = f"{path}" + (f" (sweep {v.name})" if len(variants) > 1 else "")
        try:
            network.build_topology(topology_spec(v.scenario))
            for spec in v.scenario.compressors:
                choose_collective(v.scenario, spec)
        except ValueError as err:
            raise BadInput(f"{where}: {err}") from None
    return sc, variants


def _run(scenario: Path, out: Optional[Path], quiet: bool, debug: bool, jobs: int = 1,
         scheduler: Optional[str] = None) -> None:
    from . import engine

    sc, variants = _load(scenario)
    out = out or Path("reports") / sc.name
    if not quiet:
        err_console.print(f"{scenario}: {len(variants)} variant(s) × {len(sc.compressors)} "
                          f"compressor(s), {sc.run.iterations} iterations → {out}/")
    with _failures("run", debug), RichProgress(err_console, quiet) as progress:
        result = engine.run(sc, out, progress=progress, source=str(scenario), jobs=jobs,
                            scheduler=scheduler)
    if not quiet:
        print_summary(result.summary, sc.run.target_accuracy)
        err_console.print(f"wall time {result.wall_s:.1f} s · report: {out / 'report.html'} "
                          f"(summary.md, trace.json beside it)")


@app.command()
def run(scenario: Path = typer.Argument(..., help="scenario YAML file", show_default=False),
        out: Optional[Path] = OUT, quiet: bool = QUIET, debug: bool = DEBUG):
    """Train with real compressed gradients, simulate the cluster, write results and report.

    Writes results.jsonl, summary.json, scenario.resolved.yaml, provenance.json,
    report.html, summary.md and trace.json into the output folder, and prints a summary.

    Example: simnet run scenarios/quickstart.yaml --out reports/quickstart
    """
    _run(scenario, out, quiet, debug)


@app.command()
def sweep(scenario: Path = typer.Argument(..., help="scenario YAML file with a sweep: section", show_default=False),
          out: Optional[Path] = OUT, quiet: bool = QUIET, debug: bool = DEBUG,
          jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="simulate variants on N local processes"),
          scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask.distributed scheduler address (tcp://host:8786)")):
    """Run every variant of the scenario's sweep: section (train once, simulate many).

    The report adds speedup against the swept axis. Interrupted (Ctrl-C, kill)? Run the
    same command again: finished variants and trained traces are kept in OUT/.simnet/.

    Example: simnet sweep my_sweep.yaml --out reports/bandwidth
    (my_sweep.yaml has e.g. sweep: {cluster.topology.bandwidth: [100 Mbit/s, 1 Gbit/s, 10 Gbit/s]})
    """
    sc, _ = _load(scenario)
    if not sc.sweep:
        raise BadInput(f"{scenario}: no sweep: section (add one, or use `simnet run`)")
    _run(scenario, out, quiet, debug, jobs, scheduler)


@app.command()
def report(out_dir: Path = typer.Argument(..., help="a run's output folder", show_default=False),
           quiet: bool = QUIET, debug: bool = DEBUG):
    """Re-render report.html, summary.md and trace.json from a run's results files alone.

    Nothing is re-run: the report reads summary.json, results.jsonl,
    scenario.resolved.yaml (and timeline.json, provenance.json when present).

    Example: simnet report reports/quickstart
    """
    from .report import ReportInputError, write_report

    with _failures("report", debug):
        try:
            path = write_report(out_dir)
        except ReportInputError as err:  # missing or broken results files: the user's to fix
            raise BadInput(str(err)) from None
    if not quiet:
        err_console.print(f"report: {path}")


@app.command()
def check(scenarios: List[Path] = typer.Argument(..., help="scenario YAML file(s)", show_default=False),
          quiet: bool = QUIET):
    """Validate scenario files (every sweep point, collective and topology) without running.

    Example: simnet check scenarios/*.yaml
    """
    for path in scenarios:
        sc, variants = _load(path)
        if not quiet:
            err_console.print(f"{path}: ok ({len(variants)} variant(s), {len(sc.compressors)} compressor(s))")


@app.command()
def schema(markdown: bool = typer.Option(False, "--markdown", help="the Markdown reference instead"),
           out: Optional[Path] = typer.Option(None, "--out", "-o", help="write to FILE, not stdout")):
    """Print the JSON Schema of scenario files (editor completion, CI checks).

    Example: simnet schema > scenario.schema.json;  simnet schema --markdown
    """
    if markdown:
        from .report.schema_doc import reference

        text = reference()
    else:
        from .scenario import Scenario

        text = json.dumps(Scenario.model_json_schema(), indent=2) + "\n"
    if out:
        out.write_text(text)
    else:
        sys.stdout.write(text)


def _register_extras() -> None:
    """Commands of other packages (deploy: measure, calibrate, validate) when present."""
    try:
        from .deploy.commands import register
    except ImportError:
        return
    register(app)


_register_extras()


def main() -> None:
    try:
        rc = app(standalone_mode=False)  # returns the code of an explicit typer.Exit
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except RunFailed as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as err:
        sys.exit(err.exit_code)
    except Exception as err:
        # Usage errors (unknown option, missing argument) of click or typer's vendored click:
        # they carry exit_code 2 and print themselves.
        if not (hasattr(err, "show") and hasattr(err, "exit_code")):
            raise
        err.show()
        sys.exit(err.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()

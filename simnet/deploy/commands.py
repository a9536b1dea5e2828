"""Typer commands `measure`, `calibrate`, `validate`; cli.py calls `register(app)`.

Errors the user can fix (bad scenario, too many ranks, no root/namespaces) exit 2 with one
line on stderr; a failed real run exits 1 with the failing rank's log tail.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]


def _fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _scenario(path: Path):
    from ..scenario import ScenarioError, load

    try:
        return load(path)
    except ScenarioError as err:
        _fail(str(err))


def register(app: typer.Typer) -> None:
    """Add `measure`, `calibrate` and `validate` to the simnet command line."""

    @app.command()
    def measure(scenario: Path = typer.Argument(..., help="scenario YAML file"),
                out: Optional[Path] = typer.Option(None, "--out", "-o", help="output folder (default reports/<name>-measured)"),
                iterations: Optional[int] = typer.Option(None, "--iterations", "-n", min=1, help="override run.iterations"),
                loopback: bool = typer.Option(False, "--loopback", help="unshaped local processes, no namespaces"),
                force: bool = typer.Option(False, "--force", help="allow more ranks than cores / rates above 200 Mbit/s")):
        """Train the scenario for real: DDP with the compression hooks, gloo, K local processes.

        Links are shaped to the scenario's bandwidth in network namespaces (needs root);
        writes results.jsonl and summary.json with variant "measured".
        Example: simnet measure scenarios/quickstart.yaml -n 50
        """
        from .launch import RunFailed
        from .measure import measure as run_measure

        sc = _scenario(scenario)
        out = out or Path("reports") / f"{sc.name}-measured"
        try:
            info = run_measure(sc, out, iterations, emulate=False if loopback else None, force=force)
        except (ValueError, RuntimeError) as err:
            _fail(str(err), 1 if isinstance(err, RunFailed) else 2)
        for w in info["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
        for row in info["summary"]:
            print(f"{row['compressor']:<24} {row['mean_iteration_time_s']:.4f} s/iteration  "
                  f"{row['bytes_per_iteration']:.0f} B/iteration  final loss {row['final_loss']:.4f}")
        print(f"results: {out}")

    @app.command()
    def calibrate(scenario: Optional[Path] = typer.Argument(None, help="take workers and bandwidth from this scenario"),
                  workers: int = typer.Option(2, "--workers", "-k", min=2, help="ranks (without a scenario)"),
                  bandwidth: str = typer.Option("100 Mbit/s", "--bandwidth", "-b", help="link rate (without a scenario)"),
                  out: Path = typer.Option(Path("calibration.yaml"), "--out", "-o", help="calibration YAML file"),
                  force: bool = typer.Option(False, "--force", help="allow more ranks than cores")):
        """Fit alpha, a bandwidth factor and per-collective overheads on the emulated cluster.

        Example: simnet calibrate --workers 2 --bandwidth "100 Mbit/s" -o calibration.yaml
        """
        import os

        from ..units import UnitError, parse_bandwidth
        from . import calibrate as cal
        from .launch import RunFailed
        from .netns import run_emulated

        if scenario is not None:
            sc = _scenario(scenario)
            workers, bandwidth = sc.cluster.workers, sc.cluster.topology.bandwidth
        try:
            rate = 8 * parse_bandwidth(bandwidth, "--bandwidth")
        except UnitError as err:
            _fail(str(err))
        if workers > (os.cpu_count() or 1) and not force:
            _fail(f"{workers} ranks on {os.cpu_count()} cores would measure the CPU; use --force")
        try:
            run = run_emulated(cal.tasks(workers, rate), workers, rate)
        except RunFailed as err:
            _fail(str(err), 1)
        except RuntimeError as err:
            _fail(str(err))
        for w in run["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
        fitted = cal.fit(run["results"], workers, rate)
        cal.write(out, fitted, f"emulated star, {workers} ranks, {rate / 1e6:g} Mbit/s")
        print(out.read_text(), end="")

    @app.command()
    def validate(scenario: Path = typer.Argument(..., help="scenario YAML file"),
                 out: Optional[Path] = typer.Option(None, "--out", "-o", help="output folder (default reports/<name>-validation)"),
                 calibration: Optional[Path] = typer.Option(None, "--calibration", "-c", help="calibration YAML (default: calibrate in the same run)"),
                 iterations: int = typer.Option(5, "--iterations", "-n", min=2, help="real DDP iterations per compressor"),
                 force: bool = typer.Option(False, "--force", help="allow more ranks than cores")):
        """Predicted vs measured time per compressor and collective on the emulated cluster.

        Writes validation.json into the output folder.
        Example: simnet validate scenarios/quickstart.yaml
        """
        from . import calibrate as cal
        from .launch import RunFailed
        from .validate import format_table, validate as run_validate

        sc = _scenario(scenario)
        out = out or Path("reports") / f"{sc.name}-validation"
        try:
            fitted = cal.read(calibration) if calibration else None
            report = run_validate(sc, out, fitted, iterations=iterations, force=force)
        except RunFailed as err:
            _fail(str(err), 1)
        except (ValueError, RuntimeError, OSError) as err:
            _fail(str(err))
        print(format_table(report))
        print(f"validation: {out / 'validation.json'}")

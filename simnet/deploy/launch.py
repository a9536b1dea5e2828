"""Start K rank processes (`worker.py`), wait for them with a deadline, merge their results.

`run_local` runs the ranks on loopback (no shaping). `netns.run_emulated` reuses `run_job`
with a command prefix that puts each rank into its own network namespace.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

__all__ = ["run_local", "run_job", "merge", "free_port", "RunFailed"]


class RunFailed(RuntimeError):
    """A rank failed or the run passed its deadline; the message carries the rank's log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill(proc: subprocess.Popen) -> None:
    """End one rank (its own session, started by us) and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def run_job(tasks: list[dict], workers: int, timeout_s: float, master_addr: str = "127.0.0.1",
            prefix: Callable[[int], list[str]] = lambda r: [],
            env: Callable[[int], dict] = lambda r: {}, folder: Path | None = None) -> list[list[dict]]:
    """Run `tasks` on `workers` ranks; returns each rank's result list. Raises RunFailed."""
    own = folder is None
    folder = Path(tempfile.mkdtemp(prefix="simnet-job-")) if own else Path(folder)
    job = {"world_size": workers, "master_addr": master_addr, "master_port": free_port(),
           "timeout_s": max(30.0, timeout_s), "tasks": tasks}
    job_path = folder / "job.json"
    job_path.write_text(json.dumps(job))
    # the codec's thread pools (compression/threads.py) get the ranks' share of the cores, as
    # torch does (worker.py): two ranks on two cores, each with two codec threads, decoded
    # their all-gathered payloads at the same moment 1-2 ms slower than measured alone
    share = {"SIMNET_THREADS": os.environ.get("SIMNET_THREADS",
                                              str(max(1, (os.cpu_count() or 1) // workers)))}
    procs = []
    try:
        for r in range(workers):
            log = open(folder / f"rank{r}.log", "w")
            cmd = prefix(r) + [sys.executable, "-m", "simnet.deploy.worker", str(job_path), str(r)]
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                          env={**os.environ, **share, **env(r)},
                                          start_new_session=True))
            log.close()
        deadline = time.monotonic() + timeout_s
        while any(p.poll() is None for p in procs):
            failed = [r for r, p in enumerate(procs) if p.poll() not in (None, 0)]
            if failed:  # the others would wait for the failed rank until gloo's timeout
                raise RunFailed(f"rank {failed[0]} failed:\n{_tail(folder / f'rank{failed[0]}.log')}")
            if time.monotonic() > deadline:
                raise RunFailed(f"ranks did not finish within {timeout_s:.0f} s:\n"
                                f"{_tail(folder / 'rank0.log')}")
            time.sleep(0.05)
        results = []
        for r, p in enumerate(procs):
            path = folder / f"rank{r}.json"
            data = json.loads(path.read_text()) if path.exists() else []
            errors = [t["error"] for t in data if "error" in t]
            if errors:
                raise RunFailed(f"rank {r} failed:\n{errors[0][-3000:]}")
            if p.returncode != 0 or not path.exists():
                raise RunFailed(f"rank {r} exited {p.returncode}:\n{_tail(folder / f'rank{r}.log')}")
            results.append(data)
        return results
    finally:
        for p in procs:
            _kill(p)


def run_local(tasks: list[dict], workers: int, timeout_s: float = 300.0) -> list[dict]:
    """Run tasks on `workers` local processes over loopback; returns merged results."""
    return merge(run_job(tasks, workers, timeout_s, env=lambda r: {"GLOO_SOCKET_IFNAME": "lo"}))


def _slowest(per_rank: list[list[float]]) -> list[float]:
    """Per repetition, the slowest rank: a collective is done when its last rank is."""
    return [max(ts) for ts in zip(*per_rank)]


def merge(results: list[list[dict]]) -> list[dict]:
    """Combine the ranks' results task by task (times in seconds, medians over repetitions)."""
    merged = []
    for per_rank in zip(*results):
        first = dict(per_rank[0])
        kind = first["kind"]
        if kind == "bench":
            first["durations"] = [_slowest([r["durations"][i] for r in per_rank])
                                  for i in range(len(first["sizes"]))]
            first["median_s"] = [statistics.median(d) for d in first["durations"]]
        elif kind == "payload":
            first["durations"] = _slowest([r["durations"] for r in per_rank])
            first["median_s"] = statistics.median(first["durations"])
            first["payload_bytes"] = [r["payload_bytes"] for r in per_rank]
            first["wire_bytes"] = max(r["wire_bytes"] for r in per_rank)
        elif kind == "pingpong":
            first["alpha_s"] = statistics.median(first["one_way"])
        elif kind == "aggregate":
            first["means"] = [r["means"] for r in per_rank]
        elif kind == "train":
            first["ranks"] = [r["records"] for r in per_rank]
            first["pinned"] = [r.get("pinned") for r in per_rank]
            del first["records"]
        merged.append(first)
    return merged

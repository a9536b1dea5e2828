"""Thread pools of the codecs. numpy's fills and the compiled kernels release the GIL, so
contiguous ranges of one payload's work run in parallel on a few threads.

Each parallel module uses a pool of its own name: a job running on one module's pool that
calls into another module's parallel code then never waits for a thread of its own pool.
`parallel_map` (chunks of the `fixed` codec and of the uniform draws) runs jobs that call no
parallel code themselves, on a pool of its own.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["THREADS", "pool", "split", "run_ranges", "parallel_map"]


def _threads() -> int:
    """Threads of one payload's work: SIMNET_THREADS when set (the launcher of real runs sets
    it so that K ranks on C cores use C // K each, as their torch does), else min(4, cores)."""
    env = os.environ.get("SIMNET_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


THREADS = _threads()
_pools: dict[tuple[str, int], ThreadPoolExecutor] = {}
_lock = threading.Lock()


def pool(name: str, workers: int = THREADS) -> ThreadPoolExecutor:
    """The process's pool `name` of `workers` threads, made on first use."""
    with _lock:
        if (name, workers) not in _pools:
            _pools[name, workers] = ThreadPoolExecutor(max(1, workers), thread_name_prefix=name)
        return _pools[name, workers]


def split(total: int, parts: int) -> list[tuple[int, int]]:
    """[0, total) in contiguous ranges [lo, hi): `parts` of them, at most `total`, at least 1."""
    parts = max(1, min(parts, total))
    cuts = [total * i // parts for i in range(parts + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def run_ranges(name: str, fn, ranges, threads: int = THREADS) -> list:
    """[fn(lo, hi) for each range], in order: the first on this thread, the others on the
    pool `name` (threads - 1 workers); exceptions propagate."""
    if len(ranges) == 1:
        return [fn(*ranges[0])]
    rest = [pool(name, threads - 1).submit(fn, *r) for r in ranges[1:]]
    return [fn(*ranges[0])] + [f.result() for f in rest]


def parallel_map(job, starts) -> None:
    """Run `job(start)` for every start, on the "simnet-chunks" pool when there are several
    (jobs must release the GIL to gain: numpy fills and the compiled kernels do). Jobs must
    write disjoint outputs; exceptions propagate."""
    starts = list(starts)
    if len(starts) <= 1 or THREADS == 1:
        for s in starts:
            job(s)
        return
    list(pool("simnet-chunks").map(job, starts))

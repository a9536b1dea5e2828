"""Thread pools of the codecs. numpy's fills and the compiled kernels release the GIL, so
contiguous ranges of one payload's work run in parallel on a few threads.

Each parallel module uses a pool of its own name: a job running on one module's pool that
calls into another module's parallel code then never waits for a thread of its own pool.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["THREADS", "pool", "split", "run_ranges"]

THREADS = max(1, min(4, os.cpu_count() or 1))
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

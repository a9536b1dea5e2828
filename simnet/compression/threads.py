"""Threads of the codecs. numpy's fills and the compiled kernels release the GIL, so
contiguous ranges of one payload's work run in parallel on a few threads: on a pool of
Python threads, or (`team_ready`) inside one compiled kernel on numba's threading layer.

The pool's hand-off costs ~30 µs each way on a 2-vCPU VM (a sleeping thread is woken, then
takes the GIL; the caller is woken again to collect it), twice per payload against 0.3-0.6
ms of work at 1 M coordinates. A `jit.parallel_kernel` hands its ranges to OpenMP (or TBB)
threads that never take the GIL and spin briefly before sleeping: one process, 1 M
coordinates, nuqsgd `elias`, two threads, best of 300: encode 0.76 -> 0.60 ms, decode 0.43
-> 0.35 ms.

Each parallel module uses a pool of its own name: a job running on one module's pool that
calls into another module's parallel code then never waits for a thread of its own pool.
`parallel_map` (chunks of the uniform draws, of `quantize`'s compiled rounding and of the
rescaling of decoded levels) runs jobs that call no parallel code themselves, on a pool of
its own. `run_chunks` runs a payload's chunks through a serial kernel, all in one parallel
kernel where `team_ready`, else on the pool of the caller's name.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import jit

__all__ = ["THREADS", "TEAM", "pool", "split", "run_ranges", "parallel_map", "team_ready",
           "run_chunks", "bounds"]


def _threads() -> int:
    """Threads of one payload's work: SIMNET_THREADS when set (the launcher of real runs sets
    it so that K ranks on C cores use C // K each, as their torch does), else min(4, cores)."""
    env = os.environ.get("SIMNET_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


THREADS = _threads()
TEAM = True  # whether `team_ready` may say yes (tests switch it off to run the pool path)
# GOMP_SPINCOUNT of numba's OpenMP threads, unless the user set it or OMP_WAIT_POLICY: they
# spin ~0.4 ms here after a kernel (libgomp's default, 300000, spins ~5 ms: CPU the next
# torch op may want), enough to cover the Python between one payload's kernels
_SPINS = "30000"
_team: bool | None = None  # numba's threading layer works (None: not tried yet)
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


def team_ready(ranges: int) -> bool:
    """Whether to run `ranges` ranges in a `jit.parallel_kernel` now: more than one, the
    kernels on, and numba's threading layer thread-safe (OpenMP or TBB; its `workqueue`
    layer is not, and ran two ranges slower than one thread here). The first call that
    needs it starts the layer; then each call sets this thread's team size to the ranges
    (numba's setting is per calling thread)."""
    global _team
    if ranges < 2 or not TEAM or not jit.enabled():
        return False
    with _lock:
        if _team is None:
            _team = _start_team()
    if _team:
        jit.numba.set_num_threads(min(ranges, jit.numba.config.NUMBA_NUM_THREADS))
    return _team


def run_chunks(name: str, parallel, serial, head: tuple, results: np.ndarray,
               parts: int = THREADS) -> None:
    """results[c] = serial(*head, c) for every chunk c < len(results): all in one launch of
    the parallel kernel `parallel(*head, results)` (a `prange` over the chunks calling
    `serial`) where `team_ready`, else `parts` contiguous runs of chunks on this thread and
    the pool `name`."""
    ranges = split(len(results), parts)
    if team_ready(len(ranges)):
        parallel(*head, results)
        return

    def run(c0: int, c1: int) -> None:
        for c in range(c0, c1):
            results[c] = serial(*head, c)

    run_ranges(name, run, ranges, parts)


@jit.parallel_kernel
def _probe(out):
    for i in jit.prange(out.size):
        out[i] = i


def _start_team() -> bool:
    """Start numba's threading layer (a thread-safe one unless NUMBA_THREADING_LAYER names
    one): whether it runs a probe kernel."""
    config = jit.numba.config
    before = config.THREADING_LAYER
    if "NUMBA_THREADING_LAYER" not in os.environ:
        config.THREADING_LAYER = "threadsafe"
    spins = not ({"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} & set(os.environ))
    if spins:  # read once, as libgomp loads (torch's own copy has read its own already)
        os.environ["GOMP_SPINCOUNT"] = _SPINS
    try:
        out = np.zeros(2, np.int64)
        _probe(out)
        return bool(out[1] == 1 and jit.numba.threading_layer() in ("omp", "tbb"))
    except (ValueError, RuntimeError, ImportError, OSError):  # no layer could be loaded
        config.THREADING_LAYER = before
        return False
    finally:
        if spins:  # (child processes need not inherit it)
            del os.environ["GOMP_SPINCOUNT"]


def bounds(ranges) -> np.ndarray:
    """Contiguous ranges [(lo, hi), ...] as int64 [len + 1] bounds, a parallel kernel's
    argument: range i is [bounds[i], bounds[i + 1])."""
    return np.array([lo for lo, _ in ranges] + [ranges[-1][1]], np.int64)

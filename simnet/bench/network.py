"""Network benchmark: simulated collectives per second and max-min recomputation time.

    python -m simnet.bench network [--budget SECONDS] [--sizes 64,256,1024]

Prints iterations/s (one collective of 100 MB per worker = one iteration) for ring-allreduce
and allgather on star and fat_tree, analytic and fluid, in two columns: the first call on a
fresh graph (it builds the cached routes and task-graph structure) and warm calls; the
engine's common case (star, 8 and 64 workers, per-worker start times, a new draw each call),
and the time of one full max-min
recomputation at 1,000 active flows. Cases that overrun the budget are reported as such.
Goals: fluid 1,024-worker ring all-reduce on a fat tree <= 1 s; analytic >= 150 it/s at
1,024; recomputation at 1,000 flows <= 1 ms.
"""

from __future__ import annotations

import argparse
import signal
import time

import numpy as np

from simnet import network
from simnet.network.maxmin import maxmin_rates
from simnet.network.routing import router

NBYTES = 100_000_000
LINK = {"bandwidth": "100 Gbit/s", "latency": "1 us"}


class _Overrun(Exception):
    pass


def _alarm(_sig, _frame):
    raise _Overrun


def _rate(fn, budget: float, min_reps: int = 1, once: bool = False) -> str:
    """Iterations/s of fn() (repeated up to ~1 s), or '> budget' if one call overruns;
    ``once``: a single call, '' if it fits the budget."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        reps, t0 = 0, time.perf_counter()
        while True:
            fn()
            if once:
                return ""
            reps += 1
            wall = time.perf_counter() - t0
            if reps >= min_reps and wall > 1.0:
                break
    except _Overrun:
        return f"> {budget:g} s/it"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return f"{reps / wall:10.2f} it/s ({wall / reps * 1e3:9.1f} ms/it)"


def _topology(kind: str, p: int, servers: int = 0):
    spec = {"kind": kind, "workers": p, **LINK}
    if kind == "star":
        spec["servers"] = servers
    return network.build_topology(spec)


def recompute_time(n_flows: int = 1000, reps: int = 50) -> float:
    """Median seconds of one full max-min recomputation: random worker pairs on a
    1,024-host fat tree, 10 Gbit/s links."""
    g = _topology("fat_tree", 1024)
    r = router(g)
    rng = np.random.default_rng(0)
    w = np.array([r.index[x] for x in network.workers(g)])
    src = rng.choice(w, n_flows)
    dst = rng.choice(w, n_flows)
    dst = np.where(dst == src, w[(np.searchsorted(w, src) + 1) % w.size], dst)
    links, _ = r.routes(src, dst)
    pf, pl = np.nonzero(links >= 0)
    pl = links[pf, pl]
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        maxmin_rates(n_flows, pf, pl, r.cap)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simnet.bench network", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=30.0, help="seconds per fluid case")
    ap.add_argument("--sizes", default="64,256,1024", help="worker counts")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"simnet network benchmark: {NBYTES / 1e6:g} MB per worker, links "
          f"{LINK['bandwidth']}, {LINK['latency']}")
    print(f"{'collective':15s} {'topology':9s} {'p':>5s} {'fidelity':9s} {'first call':>13s}   "
          f"warm (cached routes and structure)")
    for coll in ("ring-allreduce", "allgather"):
        for kind in ("star", "fat_tree"):
            for p in sizes:
                for fid in ("analytic", "fluid"):
                    g = _topology(kind, p)  # fresh graph: the first call builds every cache
                    t0 = time.perf_counter()
                    first = _rate(lambda: network.collective_time(g, coll, NBYTES, fidelity=fid),
                                  args.budget, once=True)
                    head = f"{coll:15s} {kind:9s} {p:5d} {fid:9s}"
                    if first:
                        print(f"{head} {first:>13s}", flush=True)
                        continue
                    cold = f"{(time.perf_counter() - t0) * 1e3:10.1f} ms"
                    res = _rate(lambda: network.collective_time(g, coll, NBYTES, fidelity=fid),
                                args.budget)
                    print(f"{head} {cold:>13s}   {res}", flush=True)
    rng = np.random.default_rng(0)
    for coll in ("allgather", "ring-allreduce", "ps"):
        for p in (8, 64):
            g = _topology("star", p, servers=1 if coll == "ps" else 0)
            res = _rate(lambda: network.simulate_collective(
                g, coll, rng.integers(1, NBYTES // 10, p), rng.uniform(0, 1e-3, p)), args.budget)
            print(f"{coll:15s} {'star+st':9s} {p:5d} {'fluid':9s} {res}", flush=True)
    t = recompute_time()
    print(f"max-min recomputation, 1000 flows on a 1024-host fat tree: {t * 1e3:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

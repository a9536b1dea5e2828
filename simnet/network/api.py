"""Public entry points: simulate one collective, or run collectives inside a SimPy model.

``simulate_collective`` / ``collective_time`` (fluid) run without SimPy: a cached per-graph
structure, the contention-free sweep (schedule.py) and else the event-driven solver
(fluid.py). ``start_collective`` is the SimPy-compatible entry: it runs a collective on a
shared ``FluidNetwork`` inside the caller's SimPy env (to overlap buckets with compute, or
several collectives on one network); both give the same times (tests/network/test_fluid_solver.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import collectives as C
from .flows import FluidNetwork
from .fluid import solve
from .plan import Executor, PlanBuilder
from .routing import router
from .schedule import contention_free, structure
from .topology import build_topology, servers, workers

__all__ = ["CollectiveResult", "simulate_collective", "collective_time", "start_collective",
           "COLLECTIVES"]

COLLECTIVES = sorted(set(C.BUILDERS) | {"ps", "hierarchical-allreduce"})


@dataclass
class CollectiveResult:
    """finish_s: per worker, absolute time (s) its result is complete; end_s = max(finish_s);
    link_bytes: (u, v) -> bytes carried on that directed link."""

    finish_s: list
    end_s: float
    link_bytes: dict = field(default_factory=dict)


def _per_worker(value, p: int, name: str, parse=float) -> np.ndarray:
    arr = np.asarray(value, dtype=float) if not np.isscalar(value) else np.full(p, float(value))
    if arr.ndim != 1 or arr.size != p:
        raise ValueError(f"{name}: expected one value per worker ({p}), got {arr.size}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name}: values must be finite and >= 0")
    return arr


def _plan(g, router, collective, n, start, reply, compute_s):
    w = [router.index[x] for x in workers(g)]
    b = PlanBuilder()
    if collective == "ps":
        s = [router.index[x] for x in servers(g)]
        C.parameter_server(b, w, n, start, s, reply, compute_s)
    elif collective == "hierarchical-allreduce":
        hosts = [g.nodes[x].get("host", x) for x in workers(g)]
        C.hierarchical(b, w, n, start, hosts)
    elif collective in C.BUILDERS:
        C.BUILDERS[collective](b, w, n, start)
    else:
        raise ValueError(f"collective: unknown {collective!r} (known: {COLLECTIVES})")
    return b.build()


def _inputs(g, nbytes, start_s, reply_nbytes):
    p = len(workers(g))
    n = _per_worker(nbytes, p, "nbytes")
    start = _per_worker(0.0 if start_s is None else start_s, p, "start_s")
    reply = _per_worker(n.max() if reply_nbytes is None else reply_nbytes, p, "reply_nbytes")
    return n, start, reply


def start_collective(net: FluidNetwork, collective: str, nbytes, start_s=None,
                     reply_nbytes=None, server_compute_s: float = 0.0) -> Executor:
    """Launch a collective on an existing FluidNetwork (shared with other collectives).

    ``start_s`` are absolute SimPy times (s). Returns the Executor: yield ``ex.done`` in a
    SimPy process, then read ``finish_times(ex)``.
    """
    g = net.graph
    n, start, reply = _inputs(g, nbytes, start_s, reply_nbytes)
    plan = _plan(g, net.router, collective, n, start, reply, float(server_compute_s))
    ex = Executor(net, plan)
    ex.start_s = start
    ex.worker_idx = np.array([net.router.index[x] for x in workers(g)])
    return ex


def finish_times(ex: Executor) -> list:
    """Per worker: max(its start, last delivery to it) in seconds."""
    p = ex.plan
    n_nodes = len(ex.net.router.nodes)
    xf = ex.is_xfer
    last = np.full(n_nodes, -np.inf)
    np.maximum.at(last, p.dst[xf], ex.end[xf])
    return np.maximum(ex.start_s, last[ex.worker_idx]).tolist()


def simulate_collective(topology, collective: str, nbytes, start_s=None, reply_nbytes=None,
                        server_compute_s: float = 0.0, fidelity: str = "fluid"
                        ) -> CollectiveResult:
    """One collective on its own network. ``nbytes``: int or one per worker (bytes);
    ``start_s``: when each worker's payload is ready (s, default 0); ``fidelity``: "fluid"
    (max-min flows) or "analytic" (contention-free closed forms, no link_bytes)."""
    g = build_topology(topology)
    if fidelity == "analytic":
        from .analytic import analytic_collective

        n, start, reply = _inputs(g, nbytes, start_s, reply_nbytes)
        return analytic_collective(g, collective, n, start, reply, float(server_compute_s))
    if fidelity != "fluid":
        raise ValueError(f"fidelity: expected 'fluid' or 'analytic', got {fidelity!r}")
    return _simulate_fluid(g, collective, nbytes, start_s, reply_nbytes, float(server_compute_s))


def _simulate_fluid(g, collective, nbytes, start_s, reply_nbytes, compute_s) -> CollectiveResult:
    """Fluid fidelity without SimPy: the contention-free sweep when no link is ever shared,
    else the exact event-driven solver (fluid.py); both match FluidNetwork + Executor."""
    r = router(g)
    n, start, reply = _inputs(g, nbytes, start_s, reply_nbytes)
    plan = _plan(g, r, collective, n, start, reply, compute_s)
    st = structure(g, r, collective, plan)
    end = contention_free(st, plan)
    if end is None:
        end = solve(st, plan, r.cap)
    w = np.array([r.index[x] for x in workers(g)])
    last = np.full(len(r.nodes), -np.inf)  # latest delivery to each node
    has = np.flatnonzero(np.diff(st.recv_ptr))
    if has.size:
        last[has] = np.maximum.reduceat(end[st.recv], st.recv_ptr[has])
    finish = np.maximum(start, last[w]).tolist()
    lb = st.link_bytes(plan.size)
    edges = r.edges
    return CollectiveResult(finish, max(finish), {edges[i]: float(lb[i]) for i in np.flatnonzero(lb)})


def collective_time(topology, collective: str, nbytes, reply_nbytes=None,
                    fidelity: str = "fluid", **kw) -> float:
    """Seconds for one collective with every worker starting at 0."""
    res = simulate_collective(topology, collective, nbytes, None, reply_nbytes,
                              fidelity=fidelity, **kw)
    return res.end_s

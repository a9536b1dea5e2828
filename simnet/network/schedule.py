"""Per-plan structure (routes, topological levels) and the contention-free fast path.

A plan's structure (who sends to whom, dependencies) depends only on the graph and the
collective, not on sizes or start times, so it is computed once and cached per graph.

Fast path: if no link ever carries two flows at once, every flow drains at its path's
bottleneck bandwidth, and the fluid max-min model reduces to a longest-path sweep over the
task graph in topological levels: start = max(release, predecessors' ends), drain =
start + size / bottleneck, end = drain + latency (transfers) or start + duration (local).
When every link's flows form a dependency chain (each waits for the previous one on that
link to be delivered, as in ring algorithms on link-disjoint rings) the plan is
contention-free whatever the sizes and start times: this is checked once per structure.
Otherwise the sweep checks, conservatively, that each busy flow starts after every flow
already swept on its links has drained, and gives up (None) if not: the caller then runs
the exact event-driven solver. Same arithmetic as that solver, so results agree exactly.
"""

from __future__ import annotations

import numpy as np

from ._cache import graph_cache

__all__ = ["Structure", "structure", "contention_free"]


def _expand(ptr: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions ptr[i]..ptr[i+1]-1 for every i in ids (CSR row gather)."""
    starts = ptr[ids]
    counts = ptr[ids + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    return np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)


class Structure:
    """Routes, dependencies and levels of a plan on a router (no sizes or times).

    ``links`` [n, L] link ids per task (padded with the sentinel ``n_links``; locals: all
    sentinel), ``lat`` s per task, ``bneck`` B/s per task (inf for locals), ``ptr``/``succ``/
    ``ndeps`` the dependency CSR, ``order`` tasks in topological levels (``bounds`` delimit
    the levels), ``pred_lv`` [n, D] predecessors' positions in ``order`` (padded with n),
    ``chained`` whether the plan is contention-free by structure, ``pair_task``/``pair_link``
    the flow-link incidence of all transfers, ``recv``/``recv_ptr`` transfers grouped by
    destination node.
    """

    def __init__(self, plan, router):
        n = self.n = plan.n
        self.n_links = nl = router.cap.size
        self.ptr, self.succ, self.ndeps = plan.ptr, plan.succ, plan.ndeps
        self.is_xfer = plan.src != plan.dst
        xi = np.flatnonzero(self.is_xfer)
        n_nodes = len(router.nodes)
        keys = plan.src[xi] * n_nodes + plan.dst[xi]
        ukeys, inv = np.unique(keys, return_inverse=True)
        r_links, r_lat = router.routes(ukeys // n_nodes, ukeys % n_nodes)
        L = max(r_links.shape[1], 1)
        self.links = np.full((n, L), nl, np.int64)
        self.links[xi, :r_links.shape[1]] = np.where(r_links >= 0, r_links, nl)[inv]
        self.lat = np.zeros(n)
        self.lat[xi] = r_lat[inv]
        self.bneck = np.append(router.cap, np.inf)[self.links].min(axis=1)
        rows, cols = np.nonzero(self.links < nl)
        self.pair_task, self.pair_link = rows, self.links[rows, cols]
        by_dst = np.argsort(plan.dst[xi], kind="stable")
        self.recv = xi[by_dst]
        self.recv_ptr = np.searchsorted(plan.dst[xi][by_dst], np.arange(n_nodes + 1))
        # Predecessors, padded with the sentinel n: edges b -> a from the successor CSR.
        b = np.repeat(np.arange(n), np.diff(self.ptr))
        order = np.argsort(self.succ, kind="stable")
        a, b = self.succ[order], b[order]
        D = max(int(self.ndeps.max()) if n else 0, 1)
        pred = np.full((n, D), n, np.int64)
        first = np.searchsorted(a, np.arange(n))
        pred[a, np.arange(a.size) - first[a]] = b
        levels = self._levels()
        self.order = np.concatenate(levels) if levels else np.zeros(0, np.int64)
        self.bounds = np.cumsum([0] + [lv.size for lv in levels])
        pos = np.empty(n + 1, np.int64)
        pos[self.order] = np.arange(n)
        pos[n] = n
        self.pred_lv = pos[pred[self.order]]
        self.level_of = np.repeat(np.arange(len(levels)), np.diff(self.bounds))[pos[:n]]
        self.chained = self._chained(pred)
        self._dup = None

    def _levels(self) -> list:
        left = self.ndeps.copy()
        frontier = np.flatnonzero(left == 0)
        out = []
        while frontier.size:
            out.append(frontier)
            succ = self.succ[_expand(self.ptr, frontier)]
            if not succ.size:
                break
            u, c = np.unique(succ, return_counts=True)
            left[u] -= c
            frontier = u[left[u] == 0]
        if sum(lv.size for lv in out) != self.n:
            raise ValueError("collective: task graph has a cycle")
        return out

    def _chained(self, pred: np.ndarray) -> bool:
        """Each transfer on a link directly depends on the previous one there (by level)."""
        lvl = self.level_of[self.pair_task]
        o = np.argsort(self.pair_link * (self.bounds.size + 1) + lvl)
        t, lk = self.pair_task[o], self.pair_link[o]
        same = np.flatnonzero(lk[1:] == lk[:-1])
        return bool(np.all((pred[t[same + 1]] == t[same, None]).any(axis=1)))

    def dup(self) -> np.ndarray:
        """Per level: whether two of its transfers share a link."""
        if self._dup is None:
            key = self.level_of[self.pair_task] * (self.n_links + 1) + self.pair_link
            u, c = np.unique(key, return_counts=True)
            self._dup = np.zeros(self.bounds.size - 1, bool)
            self._dup[u[c > 1] // (self.n_links + 1)] = True
        return self._dup


def structure(g, router, key, plan) -> Structure:
    """The cached Structure of ``plan`` (``key`` names the collective; the plan's shape
    completes it)."""
    cache = graph_cache(g).setdefault("structures", {})
    k = (key, plan.n, plan.n_edges, hash(plan.src.tobytes()), hash(plan.dst.tobytes()))
    s = cache.get(k)
    if s is None:
        if len(cache) > 64:  # bound memory when many shapes are simulated
            cache.clear()
        s = cache[k] = Structure(plan, router)
    return s


def contention_free(st: Structure, plan) -> np.ndarray | None:
    """End time (s) of every task if no two flows ever share a link, else None."""
    n, nl = plan.n, st.n_links
    size = plan.size
    busy = st.is_xfer & (size > 0)
    dur = np.where(busy, size / st.bneck, 0.0)  # drain time; end = start + dur + post
    post = np.where(st.is_xfer, st.lat, plan.duration)
    o = st.order
    rel, tx, post = plan.release[o], dur[o], post[o]
    end = np.empty(n + 1)
    end[n] = -np.inf  # sentinel predecessor
    b = st.bounds
    if st.chained:  # contention-free by structure: only the longest-path sweep
        for i in range(b.size - 1):
            s = slice(b[i], b[i + 1])
            start = np.maximum(rel[s], end[st.pred_lv[s]].max(axis=1))
            end[s] = start + tx[s] + post[s]
    else:
        busy_o = busy[o]
        busy_until = np.full(nl + 1, -np.inf)  # latest drain swept on each link
        for i, dup in enumerate(st.dup()):
            s = slice(b[i], b[i + 1])
            start = np.maximum(rel[s], end[st.pred_lv[s]].max(axis=1))
            drain = start + tx[s]
            end[s] = drain + post[s]
            bz = busy_o[s]
            if not bz.any():
                continue
            if dup:
                return None
            lk = st.links[o[s][bz]]
            if np.any(start[bz, None] < busy_until[lk]):
                return None
            busy_until[lk] = drain[bz, None]  # later than any swept drain: starts after them
            busy_until[nl] = -np.inf
    out = np.empty(n)
    out[o] = end[:n]
    return out

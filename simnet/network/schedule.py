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


def _group_order(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """Stable order grouping ``keys`` (ints in [0, n_keys)): a radix sort on narrow ints."""
    for dt in (np.int16, np.int32):
        if n_keys <= np.iinfo(dt).max:
            return np.argsort(keys.astype(dt), kind="stable")
    return np.argsort(keys, kind="stable")


def _unique_inverse(keys: np.ndarray, n_keys: int):
    """np.unique(keys, return_inverse=True) for ints in [0, n_keys), by marking when the
    key range is small (no sort)."""
    if n_keys > max(1 << 16, 4 * keys.size):
        return np.unique(keys, return_inverse=True)
    used = np.zeros(n_keys, bool)
    used[keys] = True
    uk = np.flatnonzero(used)
    idx = np.zeros(n_keys, np.int64)
    idx[uk] = np.arange(uk.size)
    return uk, idx[keys]


class Structure:
    """Routes, dependencies and levels of a plan on a router (no sizes or times).

    ``route_of`` route id per task (locals: the empty route ``R``), ``r_links`` [R+1, L]
    link ids per route (padded with the sentinel ``n_links``), so ``links`` [n, L] =
    r_links[route_of]; ``lat`` s per task, ``bneck`` B/s per task (inf for locals),
    ``ptr``/``succ``/``ndeps`` the dependency CSR, ``order`` tasks in topological levels
    (``bounds`` delimit the levels; ``identity``: order is 0..n-1), ``pred_lv`` [n, D]
    predecessors' positions in ``order`` (padded with n), ``chained`` whether the plan is
    contention-free by structure, ``pair_task``/``pair_link`` the flow-link incidence of
    all transfers, ``recv``/``recv_ptr`` transfers grouped by destination node.

    Plans made of one ring (``plan.ring`` = (steps, members); see collectives.ring) get
    their levels, predecessors and dependency CSR in closed form: task k*q + i is member
    i's step k, at level k, after (k-1, i) and (k-1, i-1).
    """

    def __init__(self, plan, router):
        n = self.n = plan.n
        self.n_links = nl = router.cap.size
        ring = getattr(plan, "ring", None)
        self._ring = ring
        self.is_xfer = plan.src != plan.dst
        n_nodes = len(router.nodes)
        # Route every distinct (src, dst) once (a ring repeats its first step's pairs).
        if ring is not None:
            q = ring[1]
            keys = plan.src[:q] * n_nodes + plan.dst[:q]
            ukeys, inv = _unique_inverse(keys, n_nodes * n_nodes)
            route_of = np.tile(inv, ring[0])
        else:
            xi = np.flatnonzero(self.is_xfer)
            keys = plan.src[xi] * n_nodes + plan.dst[xi]
            ukeys, inv = _unique_inverse(keys, n_nodes * n_nodes)
        R = ukeys.size
        r_links, r_lat = router.routes(ukeys // n_nodes, ukeys % n_nodes)
        L = max(r_links.shape[1], 1)
        self.r_links = np.full((R + 1, L), nl, np.int64)  # row R: locals (no link)
        self.r_links[:R, :r_links.shape[1]] = np.where(r_links >= 0, r_links, nl)
        self.r_lat = np.append(r_lat, 0.0)
        self.r_bneck = np.append(router.cap, np.inf)[self.r_links].min(axis=1)
        if ring is None:
            route_of = np.full(n, R, np.int64)
            route_of[xi] = inv
        else:
            route_of = np.where(self.is_xfer, route_of, R)
        self.route_of = route_of
        self.lat = self.r_lat[route_of]
        self.bneck = self.r_bneck[route_of]
        self._links = self._pairs = self._csr = self._lb = None
        # Transfers grouped by destination node.
        xi = np.flatnonzero(self.is_xfer) if ring is None or not self.is_xfer.all() else None
        dx = plan.dst if xi is None else plan.dst[xi]
        by_dst = _group_order(dx, n_nodes)
        self.recv = by_dst if xi is None else xi[by_dst]
        self.recv_ptr = np.searchsorted(dx[by_dst], np.arange(n_nodes + 1))
        self._dup = None
        if ring is not None:
            self._ring_levels(*ring)
            return
        self._csr = (plan.ptr, plan.succ, plan.ndeps)
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
        self.identity = False
        self.bounds = np.cumsum([0] + [lv.size for lv in levels])
        pos = np.empty(n + 1, np.int64)
        pos[self.order] = np.arange(n)
        pos[n] = n
        self.pred_lv = pos[pred[self.order]]
        self.level_of = np.repeat(np.arange(len(levels)), np.diff(self.bounds))[pos[:n]]
        self.chained = self._chained(pred)

    # -- closed forms for one ring ---------------------------------------------------------
    def _ring_levels(self, steps: int, q: int) -> None:
        n = self.n
        self.order = np.arange(n)
        self.identity = True
        self.bounds = np.arange(0, n + 1, q)
        self.level_of = np.repeat(np.arange(steps), q)
        i = np.tile(np.arange(q), steps)
        t = np.arange(n)
        pred = np.empty((n, 2), np.int64)
        pred[:, 0] = t - q  # own previous send
        pred[:, 1] = t - q - i + (i - 1) % q  # message from the previous member
        pred[:q] = n
        self.pred_lv = pred
        # Contention-free by structure iff no link carries two members' routes: then each
        # link's transfers are one member's steps, each after the previous one.
        r = self.route_of[:q] if self.is_xfer[:q].all() else np.zeros(0, np.int64)
        lk = self.r_links[r]
        lk = lk[lk < self.n_links]
        self.chained = bool(self.is_xfer.all()) and np.unique(lk).size == lk.size
        if self.chained:
            self._dup = np.zeros(steps, bool)

    def _ring_csr(self, steps: int, q: int):
        n = self.n
        inner = (steps - 1) * q  # tasks with successors: (k+1, i) and (k+1, i+1)
        t = np.arange(inner)
        succ = np.empty((inner, 2), np.int64)
        succ[:, 0] = t + q
        succ[:, 1] = t + q - t % q + (t + 1) % q
        ptr = np.concatenate([np.arange(0, 2 * inner + 1, 2), np.full(n - inner, 2 * inner)])
        ndeps = np.full(n, 2, np.int64)
        ndeps[:q] = 0
        return ptr, succ.ravel(), ndeps

    # -- lazily built parts ----------------------------------------------------------------
    def _deps(self):
        if self._csr is None:
            self._csr = self._ring_csr(*self._ring)
        return self._csr

    @property
    def ptr(self):
        return self._deps()[0]

    @property
    def succ(self):
        return self._deps()[1]

    @property
    def ndeps(self):
        return self._deps()[2]

    @property
    def links(self) -> np.ndarray:
        """[n, L] link ids per task, padded with ``n_links``."""
        if self._links is None:
            self._links = self.r_links[self.route_of]
        return self._links

    def task_links(self, ids: np.ndarray) -> np.ndarray:
        """links[ids] without building the whole table."""
        return self.r_links[self.route_of[ids]] if self._links is None else self._links[ids]

    def _pair_arrays(self):
        if self._pairs is None:
            cnt = (self.r_links < self.n_links).sum(axis=1)
            rptr = np.concatenate([[0], np.cumsum(cnt)])
            flat = self.r_links[self.r_links < self.n_links]  # row-major: a route's hops
            per = cnt[self.route_of]
            self._pairs = (np.repeat(np.arange(self.n), per),
                           flat[_expand(rptr, self.route_of)])
        return self._pairs

    @property
    def pair_task(self) -> np.ndarray:
        return self._pair_arrays()[0]

    @property
    def pair_link(self) -> np.ndarray:
        return self._pair_arrays()[1]

    def link_bytes(self, size: np.ndarray) -> np.ndarray:
        """Bytes per link: sum of ``size`` over the transfers crossing it, in task order.

        A link on one route only gets that route's sum (same additions in the same order);
        links shared by several routes sum over their pairs."""
        if self._lb is None:
            valid = self.r_links < self.n_links
            rr = np.nonzero(valid)[0]
            lk = self.r_links[valid]
            n_routes = np.bincount(lk, minlength=self.n_links)
            single = n_routes[lk] == 1
            multi_r = np.zeros(self.r_links.shape[0], bool)
            multi_r[rr[~single]] = True
            tasks = np.flatnonzero(multi_r[self.route_of])
            cnt = valid.sum(axis=1)
            rptr = np.concatenate([[0], np.cumsum(cnt)])
            pos = _expand(rptr, self.route_of[tasks])
            keep = n_routes[lk[pos]] > 1
            self._lb = (lk[single], rr[single], np.repeat(tasks, cnt[self.route_of[tasks]])[keep],
                        lk[pos][keep])
        lk1, r1, pt, pl = self._lb
        out = np.bincount(pl, weights=size[pt], minlength=self.n_links) if pl.size else \
            np.zeros(self.n_links)
        if lk1.size:
            per_route = np.bincount(self.route_of, weights=size, minlength=self.r_links.shape[0])
            out[lk1] = per_route[r1]
        return out

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
    if st.identity:
        rel, tx = plan.release, dur
    else:
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
            lk = st.task_links(o[s][bz])
            if np.any(start[bz, None] < busy_until[lk]):
                return None
            busy_until[lk] = drain[bz, None]  # later than any swept drain: starts after them
            busy_until[nl] = -np.inf
    if st.identity:
        return end[:n]
    out = np.empty(n)
    out[o] = end[:n]
    return out

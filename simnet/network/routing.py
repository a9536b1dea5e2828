"""Shortest-path routing (hop count) with deterministic ECMP, vectorised with numpy.

Links are integer ids (rows of ``Router.edges``). For each destination we keep, per node,
the out-edges that lie on a hop-shortest path to it; a (src, dst) pair picks among several
with a hash of (src, dst, hop), so routes are stable across runs and processes.
"""

from __future__ import annotations

import numpy as np

from ._cache import graph_cache

__all__ = ["Router", "router"]


def router(g) -> "Router":
    """The (cached) Router of graph ``g``."""
    cache = graph_cache(g)
    if "router" not in cache:
        cache["router"] = Router(g)
    return cache["router"]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a deterministic integer hash (uint64 -> uint64)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


class Router:
    """Link table and routes of a DiGraph.

    Attributes: ``nodes`` (list), ``index`` (node -> int), ``edges`` (list of (u, v)),
    ``cap`` (B/s per link), ``lat`` (s per link), ``e_src``/``e_dst`` (int arrays).
    """

    def __init__(self, g):
        self.nodes = list(g.nodes)
        self.index = {n: i for i, n in enumerate(self.nodes)}
        edges = sorted(g.edges(data=True), key=lambda e: (self.index[e[0]], self.index[e[1]]))
        self.edges = [(u, v) for u, v, _ in edges]
        self.edge_index = {e: i for i, e in enumerate(self.edges)}
        self.e_src = np.array([self.index[u] for u, _ in self.edges], dtype=np.int64)
        self.e_dst = np.array([self.index[v] for _, v in self.edges], dtype=np.int64)
        self.cap = np.array([float(d["bandwidth"]) for *_, d in edges], dtype=float)
        self.lat = np.array([float(d.get("latency", 0.0)) for *_, d in edges], dtype=float)
        if np.any(~(self.cap > 0)):
            bad = self.edges[int(np.flatnonzero(~(self.cap > 0))[0])]
            raise ValueError(f"topology.bandwidth: link {bad} has non-positive bandwidth")
        n = len(self.nodes)
        # Reverse CSR (in-edges grouped by head) for BFS towards a destination.
        order = np.argsort(self.e_dst, kind="stable")
        self._in_src = self.e_src[order]
        self._in_ptr = np.searchsorted(self.e_dst[order], np.arange(n + 1))
        self._per_dst: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    # -- per-destination next-hop tables ---------------------------------------------------
    def _dist_to(self, d: int) -> np.ndarray:
        """Hop distance of every node to node d (-1: unreachable); level-synchronous BFS."""
        n = len(self.nodes)
        dist = np.full(n, -1, dtype=np.int64)
        dist[d] = 0
        frontier = np.array([d])
        level = 0
        while frontier.size:
            starts, ends = self._in_ptr[frontier], self._in_ptr[frontier + 1]
            counts = ends - starts
            idx = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
            nxt = np.unique(self._in_src[idx])
            nxt = nxt[dist[nxt] < 0]
            level += 1
            dist[nxt] = level
            frontier = nxt
        return dist

    def _prefill(self, dsts: np.ndarray, chunk: int = 256) -> None:
        """Distances to many destinations at once: a BFS over a [dests, nodes] matrix
        (one numpy pass per hop for the whole batch instead of one BFS per destination)."""
        todo = np.array([d for d in dsts.tolist() if d not in self._per_dst], np.int64)
        n = len(self.nodes)
        if todo.size < 8 or n == 0:
            return
        order = np.argsort(self.e_src, kind="stable")  # out-edges grouped by tail
        heads, tails = self.e_dst[order], self.e_src[order]
        has = np.flatnonzero(np.diff(np.searchsorted(tails, np.arange(n + 1))))
        starts = np.searchsorted(tails, has)
        for c in range(0, todo.size, chunk):
            ds = todo[c:c + chunk]
            dist = np.full((ds.size, n), -1, np.int64)
            dist[np.arange(ds.size), ds] = 0
            front = dist == 0
            level = 0
            while front.any():
                level += 1
                hit = np.zeros_like(front)
                hit[:, has] = np.logical_or.reduceat(front[:, heads], starts, axis=1)
                front = hit & (dist < 0)
                dist[front] = level
            for d, row in zip(ds.tolist(), dist):
                self._store(d, row)

    def _store(self, d: int, dist: np.ndarray):
        ok = (dist[self.e_dst] >= 0) & (dist[self.e_dst] == dist[self.e_src] - 1)
        cand = np.flatnonzero(ok)  # edges are sorted by tail already
        ptr = np.searchsorted(self.e_src[cand], np.arange(len(self.nodes) + 1))
        t = self._per_dst[d] = (dist, cand, ptr)
        return t

    def _table(self, d: int):
        """(dist, candidate edges sorted by tail, CSR pointer by tail node) towards d."""
        t = self._per_dst.get(d)
        if t is None:
            t = self._store(d, self._dist_to(d))
        return t

    # -- routes ----------------------------------------------------------------------------
    def routes(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Routes of node-index pairs -> (links [P, L] padded with -1, path latency [P] s)."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        P = src.size
        udst, slot = np.unique(dst, return_inverse=True)
        self._prefill(udst)
        tables = [self._table(int(d)) for d in udst]
        dist_src = np.empty(P, dtype=np.int64)
        for k, (dist, _, _) in enumerate(tables):
            sel = slot == k
            dist_src[sel] = dist[src[sel]]
        if np.any(dist_src < 0):
            i = int(np.flatnonzero(dist_src < 0)[0])
            raise ValueError(
                f"topology: no path from {self.nodes[src[i]]!r} to {self.nodes[dst[i]]!r}")
        # Concatenate the per-destination candidate lists, offsetting their pointers.
        sizes = np.array([t[1].size for t in tables], dtype=np.int64)
        offs = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        cand = np.concatenate([t[1] for t in tables]) if P else np.zeros(0, np.int64)
        ptr = np.stack([t[2] + o for t, o in zip(tables, offs)]) if P else None
        L = int(dist_src.max()) if P else 0
        links = np.full((P, max(L, 0)), -1, dtype=np.int64)
        h = _mix(src.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + dst.astype(np.uint64))
        cur = src.copy()
        for hop in range(L):
            act = np.flatnonzero(dist_src > hop)
            c = cur[act]
            lo = ptr[slot[act], c]
            cnt = ptr[slot[act], c + 1] - lo
            hh = _mix(h[act] + np.uint64(hop)) if hop else h[act]
            e = cand[lo + (hh % cnt.astype(np.uint64)).astype(np.int64)]
            links[act, hop] = e
            cur[act] = self.e_dst[e]
        lat = np.where(links >= 0, self.lat[links], 0.0).sum(axis=1) if L else np.zeros(P)
        return links, lat

    def path(self, u, v) -> list:
        """Route from node u to node v as a list of (u, v) edges (for inspection/tests)."""
        links, _ = self.routes(np.array([self.index[u]]), np.array([self.index[v]]))
        return [self.edges[e] for e in links[0] if e >= 0]

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
        self._edge_key = self.e_src * n + self.e_dst  # ascending and unique: edges are sorted
        # Reverse CSR (in-edges grouped by head) for BFS towards a destination.
        order = np.argsort(self.e_dst, kind="stable")
        self._in_src = self.e_src[order]
        self._in_ptr = np.searchsorted(self.e_dst[order], np.arange(n + 1))
        # Out-edges by tail: edge ids are sorted by tail already.
        self._out_ptr = np.searchsorted(self.e_src, np.arange(n + 1))
        # A node with a single in-neighbour u (a host on its switch) is reached only through
        # u: its distances are u's plus one, so one BFS towards u serves all such nodes.
        indeg = np.diff(self._in_ptr)
        self._base = np.arange(n)
        one = np.flatnonzero(indeg == 1)
        self._base[one] = self._in_src[self._in_ptr[one]]
        self._dist: dict[int, np.ndarray] = {}  # BFS distances towards a base node

    # -- hop distances towards destinations -------------------------------------------------
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
        """Distances to many base nodes at once: a BFS over a [dests, nodes] matrix
        (one numpy pass per hop for the whole batch instead of one BFS per destination)."""
        todo = np.array([d for d in dsts.tolist() if d not in self._dist], np.int64)
        n = len(self.nodes)
        if todo.size < 8 or n == 0:
            for d in todo.tolist():
                self._dist[d] = self._dist_to(d)
            return
        heads = self.e_dst  # out-edges grouped by tail
        has = np.flatnonzero(np.diff(self._out_ptr))
        starts = self._out_ptr[has]
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
                self._dist[d] = row

    def distances(self, dsts: np.ndarray) -> np.ndarray:
        """[len(dsts), nodes] hop distance of every node to each destination (-1: none)."""
        dsts = np.asarray(dsts, dtype=np.int64)
        base = self._base[dsts]
        ubase = np.unique(base)
        self._prefill(ubase)
        rows = np.stack([self._dist[b] for b in ubase.tolist()]) if ubase.size else \
            np.zeros((0, len(self.nodes)), np.int64)
        m = rows[np.searchsorted(ubase, base)]
        via = base != dsts  # reached through base: one more hop
        m[via] = np.where(m[via] >= 0, m[via] + 1, -1)
        m[np.arange(dsts.size), dsts] = 0
        return m

    # -- routes ----------------------------------------------------------------------------
    def routes(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Routes of node-index pairs -> (links [P, L] padded with -1, path latency [P] s).

        At each hop the pair's candidates are the out-edges of its current node that lead
        one hop closer to its destination, in edge-id order; the hash picks one."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        P = src.size
        udst, slot = np.unique(dst, return_inverse=True)
        dm = self.distances(udst)
        dist_src = dm[slot, src] if P else np.zeros(0, np.int64)
        if np.any(dist_src < 0):
            i = int(np.flatnonzero(dist_src < 0)[0])
            raise ValueError(
                f"topology: no path from {self.nodes[src[i]]!r} to {self.nodes[dst[i]]!r}")
        L = int(dist_src.max()) if P else 0
        links = np.full((P, max(L, 0)), -1, dtype=np.int64)
        h = _mix(src.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + dst.astype(np.uint64))
        cur = src.copy()
        n = len(self.nodes)
        for hop in range(L):
            act = np.flatnonzero(dist_src > hop)
            # Last hop: the one edge cur -> dst (a DiGraph has no parallel edges), found by
            # key; enumerating a switch's p out-edges for p² pairs would cost p³.
            last = dist_src[act] == hop + 1
            a = act[last]
            links[a, hop] = np.searchsorted(self._edge_key, cur[a] * n + dst[a])
            cur[a] = dst[a]
            for part in self._by_degree(act[~last], cur):
                self._hop(part, hop, cur, dist_src, dm, slot, h, links)
        lat = np.where(links >= 0, self.lat[links], 0.0).sum(axis=1) if L else np.zeros(P)
        return links, lat

    def _by_degree(self, act: np.ndarray, cur: np.ndarray, budget: int = 1 << 21):
        """Split pairs into parts whose current nodes have about `budget` out-edges in all
        (at most budget + the largest degree): bounded memory for the candidate edges."""
        deg = np.diff(self._out_ptr)[cur[act]]
        total = np.cumsum(deg)
        if not act.size or total[-1] <= budget:
            yield act
            return
        cuts = np.searchsorted(total, np.arange(budget, total[-1], budget), side="right")
        yield from (part for part in np.split(act, np.unique(cuts)) if part.size)

    def _hop(self, act, hop, cur, dist_src, dm, slot, h, links) -> None:
        """One hop of pairs `act`: among cur's out-edges one hop closer to the destination
        (in edge-id order), the hash of (src, dst, hop) picks one."""
        optr = self._out_ptr
        c = cur[act]
        lo, deg = optr[c], optr[c + 1] - optr[c]
        rows = np.repeat(np.arange(act.size), deg)
        e = np.repeat(lo - np.cumsum(deg) + deg, deg) + np.arange(rows.size)
        want = (dist_src[act] - hop - 1)[rows]
        ok = np.flatnonzero(dm[slot[act][rows], self.e_dst[e]] == want)
        cnt = np.bincount(rows[ok], minlength=act.size)
        first = np.cumsum(cnt) - cnt
        hh = _mix(h[act] + np.uint64(hop)) if hop else h[act]
        pick = e[ok[first + (hh % cnt.astype(np.uint64)).astype(np.int64)]]
        links[act, hop] = pick
        cur[act] = self.e_dst[pick]

    def path(self, u, v) -> list:
        """Route from node u to node v as a list of (u, v) edges (for inspection/tests)."""
        links, _ = self.routes(np.array([self.index[u]]), np.array([self.index[v]]))
        return [self.edges[e] for e in links[0] if e >= 0]

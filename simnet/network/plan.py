"""Collectives as task graphs, and a SimPy executor that runs them over a FluidNetwork.

A task is either a transfer (``src`` -> ``dst`` node, ``size`` bytes) or a local delay
(``src == dst``, ``duration`` seconds, e.g. server aggregation). A task starts once all its
predecessors are done and its ``release`` time (s) has come. Everything is numpy arrays so
that a 1,024-worker ring all-reduce (2 million transfers) builds and runs quickly.
"""

from __future__ import annotations

import numpy as np
import simpy

from .maxmin import groups, uniq

__all__ = ["PlanBuilder", "Plan", "Executor"]


class PlanBuilder:
    """Accumulates tasks (node indices) and dependency edges (task ids)."""

    def __init__(self):
        self._cols: list = []
        self._edges: list = []
        self.n = 0
        self._rings: list = []  # (first id, steps, members, has entry) per ring()

    def tasks(self, src, dst, size=0.0, release=0.0, duration=0.0) -> np.ndarray:
        """Add tasks (broadcasting arguments); returns their ids."""
        src, dst, size, release, duration = np.broadcast_arrays(
            np.asarray(src, np.int64), np.asarray(dst, np.int64), np.asarray(size, float),
            np.asarray(release, float), np.asarray(duration, float))
        k = src.size
        self._cols.append(tuple(np.ravel(a).copy() for a in (src, dst, size, release, duration)))
        ids = np.arange(self.n, self.n + k)
        self.n += k
        return ids.reshape(src.shape)

    def deps(self, before, after) -> None:
        """Task ``after[i]`` waits for ``before[i]`` (broadcast; ids < 0 are ignored)."""
        before, after = np.broadcast_arrays(np.asarray(before, np.int64), np.asarray(after, np.int64))
        ok = (before >= 0) & (after >= 0)
        self._edges.append((before[ok].ravel(), after[ok].ravel()))

    def note_ring(self, first: int, steps: int, members: int, entry: bool) -> None:
        """Record that tasks first .. first + steps*members - 1 form a ring (collectives.ring):
        task first + k*members + i is member i's step k, after (k-1, i) and (k-1, i-1)."""
        self._rings.append((first, steps, members, entry))

    def build(self) -> "Plan":
        cols = list(zip(*self._cols)) if self._cols else [[np.zeros(0)]] * 5
        src, dst, size, release, duration = (np.concatenate(c) for c in cols)
        plan = Plan(src.astype(np.int64, copy=False), dst.astype(np.int64, copy=False), size,
                    release, duration, self._edges)
        # The whole plan is one ring (its two dependency sets only): structure in closed form.
        if len(self._rings) == 1 and len(self._edges) == 2:
            first, steps, q, entry = self._rings[0]
            if first == 0 and not entry and steps * q == self.n and \
                    plan.n_edges == 2 * (steps - 1) * q:
                plan.ring = (steps, q)
        return plan


class Plan:
    """Task graph: arrays per task; successors in CSR (``ptr``, ``succ``) and in-degrees
    (``ndeps``), built on first use (a cached Structure usually makes them unnecessary)."""

    def __init__(self, src, dst, size, release, duration, edges):
        self.src, self.dst, self.size = src, dst, size
        self.release, self.duration = release, duration
        self.n_edges = sum(e[0].size for e in edges)
        self._edges = edges
        self._csr = None
        self.ring = None  # (steps, members) when the plan is one ring (PlanBuilder.note_ring)

    def _build_csr(self):
        if self._edges:
            b = np.concatenate([e[0] for e in self._edges])
            a = np.concatenate([e[1] for e in self._edges])
        else:
            b = a = np.zeros(0, np.int64)
        order = np.argsort(b, kind="stable")
        ptr = np.searchsorted(b[order], np.arange(self.n + 1))
        self._csr = (ptr, a[order], np.bincount(a, minlength=self.n))
        return self._csr

    @property
    def ptr(self):
        return (self._csr or self._build_csr())[0]

    @property
    def succ(self):
        return (self._csr or self._build_csr())[1]

    @property
    def ndeps(self):
        return (self._csr or self._build_csr())[2]

    @property
    def n(self) -> int:
        return self.src.size


class Executor:
    """Runs a Plan on a FluidNetwork; ``done`` (SimPy event) fires when every task is done.

    ``end[i]`` is the time (s) task i completed (transfers: delivered).
    """

    def __init__(self, net, plan: Plan):
        self.net, self.plan, self.env = net, plan, net.env
        self.end = np.full(plan.n, np.nan)
        self.left = plan.ndeps.copy()
        self.remaining = plan.n
        self.done = simpy.Event(self.env)
        self.is_xfer = plan.src != plan.dst
        # Route every distinct (src, dst) once.
        xi = np.flatnonzero(self.is_xfer)
        n_nodes = len(net.router.nodes)
        keys = plan.src[xi] * n_nodes + plan.dst[xi]
        ukeys, inv = np.unique(keys, return_inverse=True)
        self.routes, self.route_lat = net.router.routes(ukeys // n_nodes, ukeys % n_nodes)
        self.route_of = np.full(plan.n, -1, np.int64)
        self.route_of[xi] = inv
        if plan.n == 0:
            self.done.succeed()
        else:
            self._ready(np.flatnonzero(self.left == 0))

    def _ready(self, ids: np.ndarray) -> None:
        """Tasks whose predecessors are done: start now or at their release time."""
        now = self.env.now
        rel = self.plan.release[ids]
        later = rel > now
        if later.any():
            for t, sel in groups(rel[later], ids[later]):
                ev = self.env.timeout(float(t) - now)
                ev.callbacks.append(lambda _e, s=sel: self._start(s))
        if (~later).any():
            self._start(ids[~later])

    def _start(self, ids: np.ndarray) -> None:
        x = self.is_xfer[ids]
        local = ids[~x]
        if local.size:
            dur = self.plan.duration[local]
            for d, sel in groups(dur, local):
                ev = self.env.timeout(float(d))
                ev.callbacks.append(lambda _e, s=sel: self.on_delivered(s, self.env.now))
        xfer = ids[x]
        if xfer.size:
            r = self.route_of[xfer]
            self.net.submit(self, xfer, self.routes[r], self.route_lat[r], self.plan.size[xfer])

    def on_delivered(self, ids: np.ndarray, t: float) -> None:
        """Called by the network (or a local timer) when tasks ``ids`` complete at ``t``."""
        self.end[ids] = t
        self.remaining -= ids.size
        p = self.plan
        starts, stops = p.ptr[ids], p.ptr[ids + 1]
        counts = stops - starts
        if counts.sum():
            idx = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
            succ = p.succ[idx]
            np.subtract.at(self.left, succ, 1)
            ready = uniq(succ[self.left[succ] == 0])
            if ready.size:
                self._ready(ready)
        if self.remaining == 0:
            self.done.succeed()

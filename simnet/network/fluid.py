"""Event-driven fluid solver for one plan, without SimPy: the exact max-min model of flows.py.

Same semantics as ``FluidNetwork`` + ``Executor`` (see flows.py, plan.py): rates are max-min
fair, recomputed once per instant at which flows start or drain, only over the connected
part of the flow-link graph that changed; flows draining within 1e-12 (relative) of each
other drain together; a flow is delivered its path latency (s) after draining. The loop
runs directly over numpy arrays: next instant = min(next queued event, next drain).
"""

from __future__ import annotations

import heapq

import numpy as np

from .maxmin import component, groups, maxmin_rates, uniq
from .schedule import _expand

__all__ = ["solve"]

_SAME = 1e-12  # relative time gap under which drains count as simultaneous
_START, _DONE = 0, 1  # queued event kinds
_SMALL = 128  # active flows up to which every recomputation solves all of them


class _Solver:
    def __init__(self, st, plan, cap: np.ndarray):
        self.st, self.plan, self.cap = st, plan, cap
        self.nl = cap.size
        self.end = np.full(plan.n, np.nan)
        self.left = st.ndeps.copy()
        self.heap: list = []
        self.seq = 0
        # Active flows (struct of arrays) and their flow-link incidence (pf, pl).
        self.fid = np.zeros(0, np.int64)
        self.rem = np.zeros(0)  # bytes left at time t_at
        self.t_at = np.zeros(0)
        self.rate = np.zeros(0)
        self.t_end = np.zeros(0)  # drain time (s)
        self.pf = np.zeros(0, np.int64)
        self.pl = np.zeros(0, np.int64)
        self.new: list = []  # task ids of flows started this instant
        self.touched: list = []  # links that lost a flow this instant

    def push(self, t, kind: int, ids: np.ndarray, now: float = 0.0) -> None:
        """Queue ``ids`` at times ``t`` (array or scalar), one heap entry per distinct time."""
        if np.ndim(t) == 0:
            heapq.heappush(self.heap, (float(t), self.seq, kind, ids))
            self.seq += 1
            return
        for value, sel in groups(t, ids):
            heapq.heappush(self.heap, (float(value), self.seq, kind, sel))
            self.seq += 1

    def ready(self, ids: np.ndarray, now: float) -> None:
        rel = self.plan.release[ids]
        later = rel > now
        if later.any():
            self.push(rel[later], _START, ids[later])
            ids = ids[~later]
        if ids.size:
            self.start(ids, now)

    def start(self, ids: np.ndarray, now: float) -> None:
        st, p = self.st, self.plan
        flow = st.is_xfer[ids] & (p.size[ids] > 0)
        if not flow.all():
            idle = ids[~flow]  # locals: their duration; empty payloads: only the latency
            self.push(now + np.where(st.is_xfer[idle], st.lat[idle], p.duration[idle]), _DONE,
                      idle)
            ids = ids[flow]
        if ids.size:
            self.new.append(ids)

    def complete(self, ids: np.ndarray, t: float) -> None:
        self.end[ids] = t
        succ = self.st.succ[_expand(self.st.ptr, ids)]
        if succ.size:
            np.subtract.at(self.left, succ, 1)
            ready = uniq(succ[self.left[succ] == 0])
            if ready.size:
                self.ready(ready, t)

    def drain(self, now: float) -> None:
        """Remove flows draining now; deliver each after its path latency."""
        done = self.t_end <= now + _SAME * max(now, 1e-300)
        ids = self.fid[done]
        self.push(now + self.st.lat[ids], _DONE, ids)
        on = done[self.pf]
        self.touched.append(self.pl[on])
        keep = ~done
        remap = np.cumsum(keep) - 1
        self.fid, self.rem, self.t_at = self.fid[keep], self.rem[keep], self.t_at[keep]
        self.rate, self.t_end = self.rate[keep], self.t_end[keep]
        self.pf = remap[self.pf[~on]]
        self.pl = self.pl[~on]

    def add_new(self, now: float) -> np.ndarray:
        ids = np.concatenate(self.new) if len(self.new) > 1 else self.new[0]
        self.new = []
        lk = self.st.task_links(ids)
        rows, cols = np.nonzero(lk < self.nl)
        self.pf = np.concatenate([self.pf, rows + self.fid.size])
        new_links = lk[rows, cols]
        self.pl = np.concatenate([self.pl, new_links])
        k = ids.size
        self.fid = np.concatenate([self.fid, ids])
        self.rem = np.concatenate([self.rem, self.plan.size[ids]])
        self.t_at = np.concatenate([self.t_at, np.full(k, now)])
        self.rate = np.concatenate([self.rate, np.zeros(k)])
        self.t_end = np.concatenate([self.t_end, np.full(k, np.inf)])
        return new_links

    def recompute(self, now: float) -> None:
        seeds = self.touched
        self.touched = []
        if self.new:
            seeds.append(self.add_new(now))
        n = self.fid.size
        if n == 0 or not seeds:
            return
        # Max-min is separable over connected components, so solving all flows gives the
        # untouched ones their current rates bit for bit: below _SMALL flows, finding the
        # component costs more than it saves.
        mask = None
        if n > _SMALL:
            seed = np.concatenate(seeds) if len(seeds) > 1 else seeds[0]
            mask = component(n, self.pf, self.pl, self.nl, seed)
        if mask is None:
            sub = np.arange(n)
            new = maxmin_rates(n, self.pf, self.pl, self.cap)
        else:
            sub = np.flatnonzero(mask)
            if not sub.size:
                return
            remap = np.full(n, -1, np.int64)
            remap[sub] = np.arange(sub.size)
            on = mask[self.pf]
            new = maxmin_rates(sub.size, remap[self.pf[on]], self.pl[on], self.cap)
        diff = new != self.rate[sub]
        changed = sub[diff]
        # Bring changed flows' bytes up to now, then re-project their drain time.
        self.rem[changed] -= self.rate[changed] * (now - self.t_at[changed])
        self.t_at[changed] = now
        self.rate[changed] = new[diff]
        self.t_end[changed] = now + np.maximum(self.rem[changed], 0.0) / self.rate[changed]

    def run(self) -> np.ndarray:
        if self.plan.n:
            self.ready(np.flatnonzero(self.left == 0), 0.0)
            self.recompute(0.0)
        heap = self.heap
        while True:
            t_ev = heap[0][0] if heap else np.inf
            t_dr = float(self.t_end.min()) if self.t_end.size else np.inf
            now = min(t_ev, t_dr)
            if now == np.inf:
                break
            if t_dr <= now + _SAME * max(now, 1e-300):
                self.drain(now)
            # Everything queued for this instant, including zero-delay follow-ups.
            while heap and heap[0][0] <= now:
                _, _, kind, ids = heapq.heappop(heap)
                if kind == _DONE:
                    self.complete(ids, now)
                else:
                    self.start(ids, now)
            self.recompute(now)
        return self.end


def solve(st, plan, cap: np.ndarray) -> np.ndarray:
    """End time (s) of every task of ``plan`` (Structure ``st``) under fluid max-min."""
    return _Solver(st, plan, cap).run()

"""SimPy-driven fluid network: flows share links max-min fairly.

A flow of ``size`` bytes on a path with latency ``L`` (sum of its links' latencies) takes
bandwidth from its start until its bytes are drained, and is delivered ``L`` after draining
(the last byte's flight time), so an uncontended flow is delivered after ``L + size/B``.
Rates are recomputed only when flows start or drain, once per instant (a low-priority
SimPy event collects all changes of that instant), and only for the connected part of
the flow-link graph that changed. Flows draining at the same instant are handled together.
"""

from __future__ import annotations

import numpy as np
import simpy

from .maxmin import component, groups, maxmin_rates, uniq
from .routing import router

__all__ = ["FluidNetwork"]

_LATE = 2  # SimPy priority after NORMAL (1): runs once all same-time events are done
_SAME = 1e-12  # relative time gap under which drains count as simultaneous


class FluidNetwork:
    """Fluid max-min network over a topology DiGraph, driven by SimPy ``env``.

    ``submit(owner, ids, links, lat, size)`` starts flows; ``owner.on_delivered(ids, t)`` is
    called with the ids delivered at time ``t`` (seconds). ``link_bytes`` (array, bytes per
    link id) accumulates what was submitted.
    """

    def __init__(self, env: simpy.Environment, g, full_recompute: bool = False):
        self.env = env
        self.graph = g
        self.router = router(g)
        self.cap = self.router.cap
        self.n_links = self.cap.size
        self.link_bytes = np.zeros(self.n_links)
        self.full_recompute = full_recompute
        self.recomputes = 0
        # Active flows (struct of arrays) and their flow-link incidence pairs.
        self._owners: dict = {}  # token -> owner object; flows store the token
        self._tokens: dict = {}  # id(owner) -> token
        self._next_token = 0
        self._own = np.zeros(0, np.int64)
        self._id = np.zeros(0, np.int64)
        self._lat = np.zeros(0)
        self._rem = np.zeros(0)  # bytes left at time self._t_at
        self._t_at = np.zeros(0)
        self._rate = np.zeros(0)
        self._t_end = np.zeros(0)  # drain time (s)
        self._pf = np.zeros(0, np.int64)
        self._pl = np.zeros(0, np.int64)
        self._pending: list = []  # submissions not yet in the arrays
        self._touched: list = []  # links whose flow set changed this instant
        self._dirty = False
        self._wake_gen = 0

    # -- public ------------------------------------------------------------------------
    def submit(self, owner, ids, links: np.ndarray, lat: np.ndarray, size: np.ndarray) -> None:
        """Start flows now. ``links`` [k, L] link ids padded with -1; ``lat`` s; ``size`` B."""
        ids = np.asarray(ids, np.int64)
        size = np.asarray(size, float)
        lat = np.asarray(lat, float)
        valid = links >= 0
        np.add.at(self.link_bytes, links[valid], np.broadcast_to(size[:, None], links.shape)[valid])
        # Empty payloads or empty paths use no bandwidth: only the path latency.
        idle = (size <= 0) | ~valid.any(axis=1)
        if idle.any():
            self._deliver_later(owner, ids[idle], lat[idle])
        if (~idle).any():
            busy = ~idle
            self._pending.append((owner, ids[busy], links[busy], lat[busy], size[busy]))
            self._mark_dirty()

    @property
    def active(self) -> int:
        """Number of flows currently draining."""
        return self._id.size

    # -- internals -----------------------------------------------------------------------
    def _mark_dirty(self) -> None:
        if not self._dirty:
            self._dirty = True
            ev = simpy.Event(self.env)
            ev._ok, ev._value = True, None
            ev.callbacks.append(self._recompute)
            self.env.schedule(ev, _LATE, 0)

    def _owner_index(self, owner) -> int:
        tok = self._tokens.get(id(owner))
        if tok is None:
            tok = self._tokens[id(owner)] = self._next_token
            self._owners[tok] = owner
            self._next_token += 1
        return tok

    def _forget_idle_owners(self) -> None:
        live = set(uniq(self._own).tolist())
        for tok in [t for t in self._owners if t not in live]:
            del self._tokens[id(self._owners.pop(tok))]

    def _deliver_later(self, owner, ids: np.ndarray, lat: np.ndarray) -> None:
        # One SimPy event per distinct latency value.
        for value, sel in groups(lat, ids):
            ev = self.env.timeout(float(value))
            ev.callbacks.append(lambda _e, o=owner, s=sel: o.on_delivered(s, self.env.now))

    def _add_pending(self) -> np.ndarray:
        """Move pending submissions into the arrays; return links touched."""
        now = self.env.now
        base = self._id.size
        touched = []
        ids, lats, sizes, pfs, pls = [], [], [], [], []
        owns = []
        for owner, fid, links, lat, size in self._pending:
            k = fid.size
            owns.append(np.full(k, self._owner_index(owner), np.int64))
            ids.append(fid)
            lats.append(lat)
            sizes.append(size)
            rows, cols = np.nonzero(links >= 0)
            pfs.append(rows + base)
            pls.append(links[rows, cols])
            touched.append(links[rows, cols])
            base += k
        self._pending = []
        k_new = base - self._id.size
        self._own = np.concatenate([self._own, *owns])
        self._id = np.concatenate([self._id, *ids])
        self._lat = np.concatenate([self._lat, *lats])
        self._rem = np.concatenate([self._rem, *sizes])
        self._t_at = np.concatenate([self._t_at, np.full(k_new, now)])
        self._rate = np.concatenate([self._rate, np.zeros(k_new)])
        self._t_end = np.concatenate([self._t_end, np.full(k_new, np.inf)])
        self._pf = np.concatenate([self._pf, *pfs])
        self._pl = np.concatenate([self._pl, *pls])
        return np.concatenate(touched)

    def _recompute(self, _ev=None) -> None:
        self._dirty = False
        now = self.env.now
        seeds = list(self._touched)
        self._touched = []
        if self._pending:
            seeds.append(self._add_pending())
        n = self._id.size
        if n == 0:
            return
        seed = np.concatenate(seeds) if seeds else np.zeros(0, np.int64)
        mask = None
        if not self.full_recompute and seed.size:
            mask = component(n, self._pf, self._pl, self.n_links, seed)
        if mask is None:
            mask = np.ones(n, dtype=bool)
        sub = np.flatnonzero(mask)
        if sub.size:
            self.recomputes += 1
            remap = np.full(n, -1, np.int64)
            remap[sub] = np.arange(sub.size)
            on = mask[self._pf]
            new = maxmin_rates(sub.size, remap[self._pf[on]], self._pl[on], self.cap)
            changed = sub[new != self._rate[sub]]
            # Bring changed flows' bytes up to now, then re-project their drain time.
            r_old = self._rate[changed]
            self._rem[changed] -= r_old * (now - self._t_at[changed])
            self._t_at[changed] = now
            self._rate[changed] = new[new != self._rate[sub]]
            self._t_end[changed] = now + np.maximum(self._rem[changed], 0.0) / self._rate[changed]
        self._schedule_wake()

    def _schedule_wake(self) -> None:
        self._wake_gen += 1
        if self._id.size == 0:
            return
        t = float(self._t_end.min())
        gen = self._wake_gen
        ev = self.env.timeout(max(t - self.env.now, 0.0))
        ev.callbacks.append(lambda _e: self._drain(gen))

    def _drain(self, gen: int) -> None:
        """Remove every flow whose drain time has come; deliver each after its latency."""
        if gen != self._wake_gen:
            return  # superseded by a later recomputation
        now = self.env.now
        done = self._t_end <= now + _SAME * max(now, 1e-300)
        if not done.any():
            self._schedule_wake()
            return
        for o, rows in groups(self._own[done], np.flatnonzero(done)):
            self._deliver_later(self._owners[int(o)], self._id[rows], self._lat[rows])
        on = done[self._pf]
        self._touched.append(self._pl[on])
        keep = ~done
        remap = np.cumsum(keep) - 1
        for name in ("_own", "_id", "_lat", "_rem", "_t_at", "_rate", "_t_end"):
            setattr(self, name, getattr(self, name)[keep])
        self._pf = remap[self._pf[~on]]
        self._pl = self._pl[~on]
        if len(self._owners) > 1:
            self._forget_idle_owners()
        self._wake_gen += 1  # no wake pending until the recomputation schedules one
        self._mark_dirty()

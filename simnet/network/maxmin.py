"""Max-min fair rates by progressive filling, vectorised over a flow-link incidence list.

The incidence is given as parallel arrays ``(pair_flow, pair_link)``: flow ``pair_flow[k]``
crosses link ``pair_link[k]``. All unfrozen flows rise together; at each level the links
whose fair share ``(cap - frozen load) / unfrozen flows`` is smallest saturate and freeze
their flows. Cost: O(pairs) per distinct bottleneck level.
"""

from __future__ import annotations

import numpy as np

__all__ = ["maxmin_rates", "component", "uniq", "groups"]

_REL = 1e-12  # shares within this relative gap saturate together (float noise)


def maxmin_rates(n_flows: int, pair_flow: np.ndarray, pair_link: np.ndarray,
                 cap: np.ndarray) -> np.ndarray:
    """Max-min fair rate (B/s) of each flow; ``cap`` is the capacity (B/s) of every link.

    Progressive filling, several bottlenecks per round: a link whose fair share is the
    smallest among all links its flows cross saturates before any of them (shares only
    grow as other flows freeze), so all such links freeze their flows at their share in
    the same round. Every flow must cross at least one link.
    """
    # Renumber the links in use so per-round work scales with them, not the topology.
    # (A mark-and-cumsum over all links: cheaper than np.unique's sort of the pairs.)
    used = np.zeros(cap.size, dtype=bool)
    used[pair_link] = True
    pl = (np.cumsum(used) - 1)[pair_link]
    cap = cap[used]
    n_links = cap.size
    rate = np.zeros(n_flows)
    frozen_load = np.zeros(n_links)
    pf = pair_flow
    if pf.size > 1 and np.any(pf[1:] < pf[:-1]):
        order = np.argsort(pf, kind="stable")  # group pairs by flow for reduceat
        pf, pl = pf[order], pl[order]
    flow_min = np.full(n_flows, np.inf)
    while pf.size:
        n = np.bincount(pl, minlength=n_links)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = (cap - frozen_load) / n
        ps = share[pl]
        heads = np.flatnonzero(np.concatenate(([True], pf[1:] != pf[:-1])))
        flow_min[pf[heads]] = np.minimum.reduceat(ps, heads)
        # A link is a bottleneck when none of its flows crosses a link with a smaller share.
        lower = flow_min[pf] < ps * (1 - _REL)
        sat = (n > 0) & (np.bincount(pl[lower], minlength=n_links) == 0)
        hit = np.zeros(n_flows, dtype=bool)
        on_sat = sat[pl]
        hit[pf[on_sat]] = True
        rate[pf[on_sat]] = np.maximum(ps[on_sat], 0.0)
        on = hit[pf]
        frozen_load += np.bincount(pl[on], weights=rate[pf[on]], minlength=n_links)
        keep = ~on
        pf, pl = pf[keep], pl[keep]
    return rate


def component(n_flows: int, pair_flow: np.ndarray, pair_link: np.ndarray, n_links: int,
              seed_links: np.ndarray, max_rounds: int = 6) -> np.ndarray | None:
    """Flows (bool mask) whose rates may change when ``seed_links`` gain or lose a flow.

    That is the connected component of the seed links in the flow-link graph. Returns None
    when the closure has not settled after ``max_rounds`` expansions (caller recomputes all).
    """
    link_on = np.zeros(n_links, dtype=bool)
    link_on[seed_links] = True
    flow_on = np.zeros(n_flows, dtype=bool)
    count = -1
    for _ in range(max_rounds):
        flow_on[pair_flow[link_on[pair_link]]] = True
        link_on[pair_link[flow_on[pair_flow]]] = True
        c = int(link_on.sum())
        if c == count:
            return flow_on
        count = c
    return None


def uniq(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: faster than np.unique on small hot-path arrays)."""
    if x.size < 2:
        return x.copy()
    s = np.sort(x)
    return s[np.concatenate(([True], s[1:] != s[:-1]))]


def groups(keys: np.ndarray, items: np.ndarray):
    """Yield (key, items with that key); one group without sorting when all keys agree."""
    if keys.size == 0:
        return
    k0 = keys[0]
    if keys.size == 1 or (keys == k0).all():
        yield k0, items
        return
    for k in uniq(keys):
        yield k, items[keys == k]

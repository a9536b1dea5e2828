"""Per-graph derived data (routing tables, ranks), kept off the graph so it stays serialisable."""

from __future__ import annotations

import weakref

_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def graph_cache(g) -> dict:
    """A dict tied to ``g``; emptied when the node or edge count changes (graph edited)."""
    stamp = (g.number_of_nodes(), g.number_of_edges())
    entry = _CACHE.get(g)
    if entry is None or entry[0] != stamp:
        entry = (stamp, {})
        _CACHE[g] = entry
    return entry[1]

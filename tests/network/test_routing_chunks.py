"""Routes computed in bounded-memory parts are the routes computed at once."""

import numpy as np

from simnet import network
from simnet.network.routing import Router


def all_pairs(r: Router, g):
    w = np.array([r.index[x] for x in network.workers(g)])
    src, dst = np.repeat(w, w.size), np.tile(w, w.size)
    keep = src != dst
    return src[keep], dst[keep]


def test_parts_cover_the_pairs_within_the_budget():
    g = network.build_topology({"kind": "fat_tree", "workers": 128, "bandwidth": "10 Gbit/s",
                                "latency": "1 us"})
    r = Router(g)
    act = np.arange(0, 2000, 3)
    cur = np.arange(act.max() + 1) % len(r.nodes)  # the current node of each pair
    parts = list(r._by_degree(act, cur, budget=50))
    np.testing.assert_array_equal(np.concatenate(parts), act)
    deg = np.diff(r._out_ptr)
    for part in parts:  # cut where the running total passes a multiple of the budget
        assert deg[cur[part]].sum() <= 50 + deg.max()
    assert len(parts) > 10


def test_small_parts_give_identical_ecmp_routes(monkeypatch):
    g = network.build_topology({"kind": "fat_tree", "workers": 128, "bandwidth": "10 Gbit/s",
                                "latency": "1 us"})
    src, dst = all_pairs(Router(g), g)
    whole = Router(g).routes(src, dst)
    original = Router._by_degree
    monkeypatch.setattr(Router, "_by_degree", lambda self, act, cur: original(self, act, cur, 64))
    parts = Router(g).routes(src, dst)
    np.testing.assert_array_equal(whole[0], parts[0])
    np.testing.assert_array_equal(whole[1], parts[1])
    assert (whole[0] >= 0).sum() > 0 and len(set(map(tuple, whole[0][:, :3].tolist()))) > 1


def test_star_last_hop_is_the_edge_to_the_destination():
    g = network.build_topology({"kind": "star", "workers": 300, "bandwidth": "10 Gbit/s",
                                "latency": "1 us"})
    r = Router(g)
    src, dst = all_pairs(r, g)
    links, _ = r.routes(src, dst)
    assert links.shape == (src.size, 2)
    np.testing.assert_array_equal(r.e_src[links[:, 0]], src)
    np.testing.assert_array_equal(r.e_dst[links[:, 1]], dst)
    np.testing.assert_array_equal(r.e_dst[links[:, 0]], r.e_src[links[:, 1]])

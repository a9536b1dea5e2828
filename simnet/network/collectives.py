"""Collective algorithms as task graphs (see plan.py). Sizes in bytes, times in seconds.

Every builder takes ``w`` (worker node indices in rank order), per-worker ``n`` (bytes each
worker contributes) and ``start`` (s, when each worker's payload is ready). Step-by-step
algorithms are pipelined per worker: a worker's step k starts when its own step k-1 send
and the step k-1 message it receives are both delivered.
"""

from __future__ import annotations

import numpy as np

from .plan import PlanBuilder

__all__ = ["BUILDERS", "ring", "ring_allreduce", "ring_allgather", "direct_allgather",
           "parameter_server", "halving_doubling", "broadcast", "hierarchical"]


def ring(b: PlanBuilder, w, steps: int, size, start, entry=None):
    """``steps`` ring steps over members ``w`` (m_i sends to m_{i+1}).

    ``size[k, i]`` bytes in step k from member i; ``entry``: (q, 2) task ids each member
    first waits for (-1: none). Returns (q, 2) exit ids: [last send, last receive] per member.
    """
    q = len(w)
    w = np.asarray(w)
    if q < 2 or steps == 0:
        return np.full((q, 2), -1, np.int64) if entry is None else entry
    nxt = np.roll(w, -1)
    ids = b.tasks(np.broadcast_to(w, (steps, q)), np.broadcast_to(nxt, (steps, q)),
                  np.broadcast_to(size, (steps, q)), np.broadcast_to(start, (steps, q)))
    if entry is not None:
        b.deps(entry[:, 0], ids[0])
        b.deps(entry[:, 1], ids[0])
    b.deps(ids[:-1], ids[1:])  # own previous send
    b.deps(np.roll(ids[:-1], 1, axis=1), ids[1:])  # message received from predecessor
    b.note_ring(int(ids[0, 0]), steps, q, entry is not None)
    return np.stack([ids[-1], np.roll(ids[-1], 1)], axis=1)


def ring_allreduce(b, w, n, start):
    """Reduce-scatter + all-gather: 2(p-1) steps of max(n)/p bytes."""
    p = len(w)
    ring(b, w, 2 * (p - 1), np.max(n) / p, start)


def ring_allgather(b, w, n, start):
    """p-1 steps; in step k worker i forwards worker (i-k)'s payload."""
    p = len(w)
    k = np.arange(p - 1)[:, None]
    i = np.arange(p)[None, :]
    ring(b, w, p - 1, np.asarray(n, float)[(i - k) % p], start)


def direct_allgather(b, w, n, start):
    """Every worker sends its payload to every other worker at once (p(p-1) flows)."""
    p = len(w)
    i, j = np.nonzero(~np.eye(p, dtype=bool))
    w = np.asarray(w)
    b.tasks(w[i], w[j], np.asarray(n, float)[i], np.asarray(start, float)[i])


def parameter_server(b, w, n, start, servers, reply, compute_s: float):
    """Push n_i/S to each of S shards; each shard waits for all pushes, computes, replies."""
    if not len(servers):
        raise ValueError("topology.servers: collective 'ps' needs at least one server")
    s = np.asarray(servers)
    S, p = s.size, len(w)
    wi = np.repeat(np.asarray(w), S)
    si = np.tile(s, p)
    push = b.tasks(wi, si, np.repeat(np.asarray(n, float), S) / S, np.repeat(start, S))
    comp = b.tasks(s, s, duration=compute_s)
    b.deps(push, np.tile(comp, p))
    pull = b.tasks(si, wi, np.repeat(np.asarray(reply, float), S) / S)
    b.deps(np.tile(comp, p), pull)


def halving_doubling(b, w, n, start):
    """Rabenseifner all-reduce for any p: recursive halving then doubling on p' = 2^floor(lg p).

    Non-powers of two (r = p - p'): among ranks 0..2r-1 each even rank first sends its whole
    vector (n bytes) to the next odd rank and sits out; the p' remaining ranks run halving
    (steps of n/2, n/4, ..., n/p') and doubling (n/p', ..., n/2) with partner rank xor d; at
    the end each odd rank sends the full result (n bytes) back to its even neighbour.
    """
    p = len(w)
    if p < 2:
        return
    w = np.asarray(w)
    n = float(np.max(n))
    start = np.asarray(start, float)
    pp = 1 << (p.bit_length() - 1)
    r = p - pp
    ranks = np.concatenate([np.arange(1, 2 * r, 2), np.arange(2 * r, p)])  # participants
    last = np.full((pp, 2), -1, np.int64)  # [own last send, last receive] per virtual rank
    if r:
        pre = b.tasks(w[0:2 * r:2], w[1:2 * r:2], n, start[0:2 * r:2])
        last[:r, 1] = pre
    lg = pp.bit_length() - 1
    v = np.arange(pp)
    dists = [pp >> (j + 1) for j in range(lg)] + [1 << j for j in range(lg)]
    sizes = [n / (2 << j) for j in range(lg)] + [n * (1 << j) / pp for j in range(lg)]
    for d, size in zip(dists, sizes):
        ids = b.tasks(w[ranks], w[ranks[v ^ d]], size, start[ranks])
        # Exchange (sendrecv): both partners must have finished their previous step.
        for col in (0, 1):
            b.deps(last[:, col], ids)
            b.deps(last[v ^ d, col], ids)
        last = np.stack([ids, ids[v ^ d]], axis=1)
    if r:
        post = b.tasks(w[1:2 * r:2], w[0:2 * r:2], n, start[1:2 * r:2])
        b.deps(last[:r, 0], post)
        b.deps(last[:r, 1], post)


def broadcast(b, w, n, start):
    """Binomial tree from rank 0: in step j ranks < 2^j send n[0] bytes to rank + 2^j."""
    p = len(w)
    w = np.asarray(w)
    start = np.asarray(start, float)
    size = float(np.asarray(n, float)[0])
    got = np.full(p, -1, np.int64)  # task that delivered to each rank
    sent = np.full(p, -1, np.int64)  # each rank's previous send
    j = 0
    while (1 << j) < p:
        snd = np.arange(min(1 << j, p - (1 << j)))
        rcv = snd + (1 << j)
        ids = b.tasks(w[snd], w[rcv], size, start[snd])
        b.deps(got[snd], ids)
        b.deps(sent[snd], ids)
        got[rcv], sent[snd] = ids, ids
        j += 1


def hierarchical(b, w, n, start, hosts):
    """Intra-host ring reduce-scatter, per-local-rank inter-host ring all-reduce on n/g,
    intra-host ring all-gather. ``hosts[i]`` is worker i's host label; with one worker per
    host (e.g. a star) this is exactly the ring all-reduce."""
    labels, host_of = np.unique(np.asarray(hosts), return_inverse=True)
    g_sizes = np.bincount(host_of)
    if g_sizes.max() == 1 or labels.size == 1:
        return ring_allreduce(b, w, n, start)
    if np.any(g_sizes != g_sizes[0]):
        raise ValueError("topology.hierarchical: hosts must have equal GPU counts")
    g, h = int(g_sizes[0]), labels.size
    w = np.asarray(w)
    start = np.asarray(start, float)
    n = float(np.max(n))
    members = np.argsort(host_of, kind="stable").reshape(h, g)  # [host, local rank]
    exits = np.full((len(w), 2), -1, np.int64)
    for hm in members:  # intra-host reduce-scatter
        exits[hm] = ring(b, w[hm], g - 1, n / g, start[hm])
    for j in range(g):  # inter-host all-reduce among local rank j of every host
        col = members[:, j]
        exits[col] = ring(b, w[col], 2 * (h - 1), n / (g * h), start[col], exits[col])
    for hm in members:  # intra-host all-gather
        ring(b, w[hm], g - 1, n / g, start[hm], exits[hm])


BUILDERS = {
    "ring-allreduce": ring_allreduce,
    "allreduce": ring_allreduce,
    "allgather": direct_allgather,
    "direct-allgather": direct_allgather,
    "ring-allgather": ring_allgather,
    "tree-allreduce": halving_doubling,
    "broadcast": broadcast,
}

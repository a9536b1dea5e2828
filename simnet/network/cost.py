"""Closed-form, contention-free collective times (Thakur, Rabenseifner & Gropp 2005).

Notation: ``p`` workers; ``alpha`` (s) = latency of one worker-to-worker message, i.e. the
*path* latency (on a star: 2 x link latency, two hops); ``beta`` (s/B) = 1 / bottleneck
bandwidth of that path. Each function says what its byte argument means. The fluid model
matches these to 1e-9 relative on a star where nothing contends.
"""

from __future__ import annotations

import math

__all__ = ["ring_allgather", "ring_allreduce", "halving_doubling_allreduce",
           "direct_allgather_star", "ps_push_pull", "binomial_broadcast",
           "hierarchical_allreduce"]


def ring_allgather(p: int, result_bytes: float, alpha: float, beta: float) -> float:
    """(p-1)a + (p-1)/p * n b, where ``result_bytes`` n = p x each worker's payload."""
    return (p - 1) * alpha + (p - 1) * (result_bytes / p) * beta


def ring_allreduce(p: int, nbytes: float, alpha: float, beta: float) -> float:
    """2(p-1)a + 2(p-1)/p * n b, ``nbytes`` n = the vector each worker holds (and gets)."""
    return 2 * (p - 1) * alpha + 2 * (p - 1) * (nbytes / p) * beta


def halving_doubling_allreduce(p: int, nbytes: float, alpha: float, beta: float) -> float:
    """Rabenseifner: p' = 2^floor(lg p), 2 lg p' a + 2(p'-1)/p' n b, plus 2(a + n b) when
    p is not a power of two (whole vector in and out of the p - p' folded ranks).
    ``nbytes`` n = the vector each worker holds."""
    if p < 2:
        return 0.0
    pp = 1 << (p.bit_length() - 1)
    lg = pp.bit_length() - 1
    # Sum the halving sizes step by step, as the simulation does, to share its rounding.
    main = sum(alpha + nbytes / (2 << j) * beta for j in range(lg))
    main += sum(alpha + nbytes * (1 << j) / pp * beta for j in range(lg))
    return main + (2 * (alpha + nbytes * beta) if p != pp else 0.0)


def direct_allgather_star(p: int, nbytes: float, alpha: float, beta: float) -> float:
    """Every worker sends its ``nbytes`` payload to the p-1 others at once over a star:
    each up- and down-link carries p-1 equal flows, so a + (p-1) n b."""
    return alpha + (p - 1) * nbytes * beta if p > 1 else 0.0


def ps_push_pull(p: int, push_bytes: float, reply_bytes: float, alpha: float, beta: float,
                 beta_server: float, shards: int = 1, compute_s: float = 0.0) -> float:
    """PS on a star: each worker pushes ``push_bytes`` (split evenly over ``shards``), the
    server computes ``compute_s``, each worker pulls ``reply_bytes``. Each phase is bounded
    by the worker link (n b) or the shared server links (p n b_server / shards):
    push = a + max(n b, p n b_s / S); pull likewise with the reply size."""
    push = alpha + max(push_bytes * beta, p * push_bytes * beta_server / shards)
    pull = alpha + max(reply_bytes * beta, p * reply_bytes * beta_server / shards)
    return push + compute_s + pull


def binomial_broadcast(p: int, nbytes: float, alpha: float, beta: float) -> float:
    """ceil(lg p) (a + n b): ``nbytes`` n = the root's payload."""
    return math.ceil(math.log2(p)) * (alpha + nbytes * beta) if p > 1 else 0.0


def hierarchical_allreduce(g: int, h: int, nbytes: float, alpha_in: float, beta_in: float,
                           alpha_out: float, beta_out: float) -> float:
    """g GPUs per host, h hosts: intra-host ring reduce-scatter and all-gather on n
    (2(g-1)(a_in + n/g b_in)) plus an inter-host ring all-reduce of n/g per local rank,
    the g rings sharing the host NIC, so b_out counts g flows per NIC
    (2(h-1)(a_out + g * n/(g h) b_out)). ``nbytes`` n = the vector each GPU holds."""
    intra = 2 * (g - 1) * (alpha_in + nbytes / g * beta_in)
    inter = 2 * (h - 1) * (alpha_out + nbytes / h * beta_out) if h > 1 else 0.0
    return intra + inter

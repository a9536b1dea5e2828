"""`python -m simnet.bench compression`: speed and size of qsgd/qsgdinf/nuqsgd per format.

For each n and each (method, format) on a Gaussian gradient: encode and decode throughput
(million coordinates per second, best of R repeats or more within a time budget, in each of
K interleaved rounds), bits per coordinate of the payload, (encode + decode time) / (time of
one `x.abs().sum()` memory pass measured in the same run, by the same rule; its 100 MB
temporary is page-faulted afresh on some runs and not others, so the ratio to the same pass
into a reused buffer, "/warm", is printed too: the stricter yardstick), and payload size /
empirical entropy of the quantized (sign, level) symbols (n·H bits).

On CPU it first prints how much a second thread gains right now (the codecs split their work
over `threads.THREADS` threads): on a shared VM a core may be lent elsewhere for seconds at a
time, which the best-of timings of interleaved rounds only partly hide.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from simnet import compression
from simnet.compression import threads, uniforms

METHODS = ["qsgd", "qsgdinf", "nuqsgd"]
FORMATS = ["fixed", "elias", "entropy", "auto"]


def best_time(fn, repeats: int, budget_s: float = 0.0) -> float:
    """The best of at least `repeats` timings of fn(), and of more until `budget_s` seconds
    are spent on them (1000 at most): a short call gets many samples, as noise on a shared
    machine weighs most on it (and only ever adds time)."""
    best, spent, count = float("inf"), 0.0, 0
    while count < repeats or (spent < budget_s and count < 1000):
        t = time.perf_counter()
        fn()
        took = time.perf_counter() - t
        best, spent, count = min(best, took), spent + took, count + 1
    return best


def thread_gain(trials: int = 30, draws: int = 1 << 21) -> tuple[float, float]:
    """(best, median) over `trials` of t(one thread) / t(`threads.THREADS` threads) for the
    same compiled job, `draws` uniform draws; each trial times both, side by side. A
    median near 1 with a best near the thread count: the cores are there only at times."""
    out = np.empty(draws, np.float32)
    parts = [(2 * a, 2 * b) for a, b in threads.split(draws // 2, threads.THREADS)]  # even

    def one():
        uniforms.fill(1, out, 0)

    def split():
        threads.run_ranges("simnet-bench", lambda lo, hi: uniforms.fill(1, out[lo:hi], lo),
                           parts)

    split()  # compile and start the pool
    gains = [best_time(one, 1) / best_time(split, 1) for _ in range(trials)]
    return max(gains), statistics.median(gains)


def entropy_bits(c, x: torch.Tensor, seed: int) -> float:
    """n·H of the symbols this encoder quantizes x to with this seed (zero carries no sign)."""
    _, idx, neg = c.quantize(x, torch.Generator(device=x.device).manual_seed(seed))
    n = x.numel()
    idx, neg = idx.reshape(-1)[:n].long(), neg.reshape(-1)[:n].long()
    counts = torch.bincount(torch.where(idx > 0, 2 * idx - 1 + neg, 0)).double()
    p = counts[counts > 0] / n
    return float(-(p * p.log2()).sum()) * n


def run(n: int, repeats: int, methods, formats, bits: int, d: int, device: str,
        rounds: int = 1, budget_s: float = 0.0) -> list[dict]:
    """The rows for one n. Every (method, format) is timed best of `repeats` (or more, within
    `budget_s` seconds: `best_time`), in each of `rounds` sweeps over them all; a row keeps
    its best over the rounds. Interleaved so, a stall of the shared machine (a core lent
    elsewhere for a second or two) lands in one round of several rows, not in all the
    timings of one. The memory passes are timed by the same rule."""
    x = torch.randn(n, generator=torch.Generator().manual_seed(0)).to(device)
    buf = torch.empty_like(x)

    def memory_pass() -> float:  # best of many: a shared machine adds noise, never removes it
        return best_time(lambda: x.abs().sum().item(), max(20, repeats), budget_s)

    def warm_pass() -> float:  # the same pass into a reused buffer: no page faults
        return best_time(lambda: torch.abs(x, out=buf).sum().item(), max(20, repeats), budget_s)

    mem, warm = memory_pass(), warm_pass()
    cases = []  # (row, compressor, payload), payloads made (and kernels compiled) untimed
    for method in methods:
        h = None
        for fmt in formats:
            c = compression.get(method, bits=bits, bucket_size=d, encoding=fmt)
            payload = c.encode(x, _generator(device))
            c.decode(payload, n)
            h = entropy_bits(c, x, 1) if h is None else h
            row = dict(n=n, method=method, format=fmt, bpc=8 * len(payload) / n,
                       ent=8 * len(payload) / h if h else float("nan"),
                       enc_s=float("inf"), dec_s=float("inf"))
            cases.append((row, c, payload))
    for _ in range(rounds):
        for row, c, payload in cases:
            row["enc_s"] = min(row["enc_s"], best_time(lambda: c.encode(x, _generator(device)),
                                                       repeats, budget_s))
            row["dec_s"] = min(row["dec_s"], best_time(lambda: c.decode(payload, n), repeats,
                                                       budget_s))
        # the yardstick sampled between rounds too: the fastest pass seen, the strictest
        mem, warm = min(mem, memory_pass()), min(warm, warm_pass())
    rows = [row for row, _, _ in cases]
    for r in rows:
        enc_s, dec_s = r.pop("enc_s"), r.pop("dec_s")
        r["enc"], r["dec"] = n / enc_s / 1e6, n / dec_s / 1e6
        r["mem"], r["mem_s"] = (enc_s + dec_s) / mem, mem
        r["warm"], r["warm_s"] = (enc_s + dec_s) / warm, warm
    return rows


def _generator(device: str) -> torch.Generator:
    """The same seed for every encode: every timing codes the same payload."""
    return torch.Generator(device=device).manual_seed(1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simnet.bench compression", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[25_600_000, 1_000_000],
                    help="gradient sizes (coordinates)")
    ap.add_argument("--repeats", type=int, default=3, help="best of R timings a round")
    ap.add_argument("--rounds", type=int, default=2,
                    help="sweeps over all rows, interleaved; each row keeps its best")
    ap.add_argument("--budget", type=float, default=0.1,
                    help="seconds a timing may take: short calls are repeated more than R times")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--formats", nargs="+", default=FORMATS, choices=FORMATS)
    ap.add_argument("--bits", type=int, default=4,
                    help="papers' convention: 1 sign bit + (bits-1) bits of level index")
    ap.add_argument("--bucket-size", type=int, default=512)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"bits={args.bits}, bucket_size={args.bucket_size}, best of {args.repeats} (or more "
          f"within {args.budget} s) in each of {args.rounds} rounds")
    if args.device == "cpu" and threads.THREADS > 1:
        trials = 30
        top, mid = thread_gain(trials)
        print(f"{threads.THREADS} codec threads; their gain over one thread now: best {top:.2f}x, "
              f"median {mid:.2f}x (of {trials} side-by-side trials)")
    for n in args.n:
        rows = run(n, args.repeats, args.methods, args.formats, args.bits, args.bucket_size,
                   args.device, args.rounds, args.budget)
        print(f"\nn = {n:,}   memory pass x.abs().sum(): {rows[0]['mem_s'] * 1e3:.2f} ms; "
              f"warm (into a reused buffer, no page faults): {rows[0]['warm_s'] * 1e3:.2f} ms")
        print(f"{'method':8} {'format':8} {'enc Mc/s':>9} {'dec Mc/s':>9} {'bits/coord':>10} "
              f"{'(enc+dec)/mem':>13} {'/warm':>6} {'size/entropy':>12}")
        for r in rows:
            print(f"{r['method']:8} {r['format']:8} {r['enc']:9.1f} {r['dec']:9.1f} "
                  f"{r['bpc']:10.3f} {r['mem']:13.1f} {r['warm']:6.1f} {r['ent']:12.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

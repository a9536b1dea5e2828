"""`python -m simnet.bench sweep`: a 100-variant network sweep over one cached trace.

Trains one trace (the quickstart's MLP with 4-bit QSGD, 8 workers), then times replaying it
on N bandwidths from 50 Mbit/s to 50 Gbit/s: in this process, and on a local process pool.
Prints seconds for training, for the sweep, and per variant. Figures, not a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _scenario(variants: int, iterations: int, workers: int) -> dict:
    rates = np.geomspace(50e6, 50e9, variants)
    return {
        "name": "bench-sweep", "seed": 0,
        "workload": {"model": "mlp", "dataset": "digits", "hidden": [256, 256], "batch_size": 32,
                     "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}},
        "cluster": {"workers": workers, "compute": {"kind": "fixed", "seconds": 0.003},
                    "topology": {"kind": "star", "bandwidth": "1 Gbit/s", "latency": "20 us"},
                    "stragglers": {"kind": "lognormal", "sigma": 0.2}},
        "compressors": [{"name": "qsgd", "levels": 7, "bucket_size": 512,
                         "encode_s": 1e-3, "decode_s": 5e-4}],
        "run": {"iterations": iterations, "eval_every": iterations},
        "sweep": {"cluster.topology.bandwidth": [f"{r / 1e6:.6g} Mbit/s" for r in rates]},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m simnet.bench sweep")
    parser.add_argument("--variants", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)

    from simnet import engine
    from simnet.scenario import expand_sweep, loads
    from simnet.state import RunState, TraceCache

    scenario = loads(_scenario(args.variants, args.iterations, args.workers))
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        start = time.perf_counter()
        engine.pin_measurements(scenario)
        variants = expand_sweep(scenario)
        traces = engine.train_all(variants[:1], engine.Progress(), TraceCache(Path(first) / "traces"))
        trained = time.perf_counter() - start
        rows = []
        for jobs in (1, args.jobs):
            out = first if jobs == 1 else second
            state = RunState(Path(out), scenario)
            start = time.perf_counter()
            engine.simulate_all(variants, traces, state, engine.Progress(), jobs, None)
            rows.append((jobs, time.perf_counter() - start))
    print(f"{args.variants}-variant bandwidth sweep, {args.workers} workers, "
          f"{args.iterations} iterations, qsgd s=7 allgather, lognormal stragglers")
    print(f"train the one trace: {trained:8.2f} s")
    for jobs, seconds in rows:
        print(f"simulate, jobs={jobs}:  {seconds:8.2f} s  ({1e3 * seconds / args.variants:7.1f} ms/variant, "
              f"{1e6 * seconds / (args.variants * args.iterations):7.1f} us/iteration)")
    return 0

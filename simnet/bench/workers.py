"""Workers benchmark: K workers' real gradients in one vmapped call vs a per-worker loop.

    python -m simnet.bench workers [--workers 16] [--batch 32] [--reps 3] [--threads N]

For the QSGD paper's MLP (784-4096-10) and the small ResNet (ResNet-8, GroupNorm) on
Fashion-MNIST (28x28; a synthetic stand-in of the same shape when the Debian package is
missing), prints the median seconds per iteration of `Workers.gradients()` batched and
looped, and their ratio, all measured in this one run on this device.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from simnet.workload import Workers, build_model, load_dataset
from simnet.workload.datasets import DatasetError

CASES = (("mlp", {"hidden": [4096]}), ("resnet_small", {}))


def _data():
    try:
        return load_dataset("fashion-mnist")
    except DatasetError:
        return load_dataset("synthetic", image_size=28, channels=1, num_classes=10, samples=4096)


def _median_s(workers: Workers, reps: int, device: torch.device) -> float:
    workers.gradients()  # warm-up: allocations, kernel choice, vmap tracing
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        workers.gradients()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m simnet.bench workers")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32, help="samples per worker")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = _data()
    print(f"{data.name}, K={args.workers} workers x B={args.batch}, device {device}, "
          f"{torch.get_num_threads()} threads")
    for name, arch in CASES:
        model = build_model(name, data, seed=0, **arch)
        seconds = {}
        for batched in (True, False):
            w = Workers(model, data, args.workers, args.batch, np.random.SeedSequence(0), device, batched)
            seconds[batched] = _median_s(w, args.reps, device)
        n = sum(p.numel() for p in model.parameters())
        print(f"  {name:13s} {n:>9,} params  batched {seconds[True] * 1e3:9.1f} ms/it  "
              f"loop {seconds[False] * 1e3:9.1f} ms/it  loop/batched {seconds[False] / seconds[True]:5.2f}x")
    return 0

"""How a worker averages the K decoded gradients it receives: one shared definition.

The simulator's engine and the `torch.distributed` hooks both call `average`, so they agree
bit for bit for any K (torch's `stack(...).mean(0)` sums in a different order from K = 8 on).
Summing into one running total also keeps one gradient-sized buffer alive instead of K, which
on CPU saves the page faults of K fresh allocations (what a real worker would do).
"""

from __future__ import annotations

from typing import Iterable

import torch

__all__ = ["average"]


def average(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """Mean of equal-shape tensors, summed in the order given, then divided by their count."""
    it = iter(tensors)
    try:
        total = next(it).clone()
    except StopIteration:
        raise ValueError("average of no tensors") from None
    count = 1
    for t in it:
        total += t
        count += 1
    return total.div_(count)

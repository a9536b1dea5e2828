"""One numpy SeedSequence per run, spawned per component (DESIGN §8), so that variants of a
sweep compare under the same gradient noise and the same straggler draws."""

from __future__ import annotations

import numpy as np
import torch

DATA, ROUNDING, STRAGGLERS, TOPOLOGY = range(4)


def component(seed: int, which: int) -> np.random.SeedSequence:
    """The SeedSequence of one component (DATA, ROUNDING, STRAGGLERS or TOPOLOGY)."""
    return np.random.SeedSequence(seed).spawn(4)[which]


def component_int(seed: int, which: int) -> int:
    """A 63-bit integer seed for APIs that take an int."""
    return int(component(seed, which).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def torch_generators(seed: int, count: int, device: torch.device) -> list[torch.Generator]:
    """`count` independent rounding generators (one per worker, plus the server's)."""
    gens = []
    for child in component(seed, ROUNDING).spawn(count):
        g = torch.Generator(device=device)
        g.manual_seed(int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
        gens.append(g)
    return gens

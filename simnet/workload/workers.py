"""K data-parallel workers computing real gradients of one shared model.

Synchronous SGD keeps every worker's parameters identical, so one model serves all K:
worker k's gradient at iteration t is the gradient on its own slice of the global batch.
Iteration t uses samples order[t*K*B : (t+1)*K*B] of an epoch-wise seeded permutation,
worker k taking the k-th block of B: K workers see exactly the union batch one worker of
batch K*B would see (the equivalence the tests check).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .datasets import Dataset

__all__ = ["Workers"]


class Workers:
    """Gradients of K workers on a shared model, as a [K, n] float32 tensor.

    Args:
        model: the shared model (its parameters are updated by `apply`).
        data: the dataset.
        workers: K.
        batch_size: samples per worker per iteration.
        seed: seeds the sampling order (numpy SeedSequence child for data).
        device: torch device for compute.
    """

    def __init__(self, model: nn.Module, data: Dataset, workers: int, batch_size: int,
                 seed_sequence: np.random.SeedSequence, device: torch.device) -> None:
        self.model = model.to(device)
        self.data = data
        self.workers = workers
        self.batch_size = batch_size
        self.device = device
        self._rng = np.random.default_rng(seed_sequence)
        self._order = np.empty(0, dtype=np.int64)
        self._x = data.x_train.to(device)
        self._y = data.y_train.to(device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.numel = sum(p.numel() for p in self.params)

    def _next_indices(self) -> np.ndarray:
        need = self.workers * self.batch_size
        while len(self._order) < need:  # draw whole epochs; the tail carries over
            self._order = np.concatenate([self._order, self._rng.permutation(len(self._x))])
        taken, self._order = self._order[:need], self._order[need:]
        return taken

    def gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One iteration's gradients [K, n] and per-worker training losses [K]."""
        idx = torch.from_numpy(self._next_indices()).to(self.device)
        x = self._x[idx].view(self.workers, self.batch_size, *self._x.shape[1:])
        y = self._y[idx].view(self.workers, self.batch_size)
        grads = torch.empty(self.workers, self.numel, device=self.device)
        losses = torch.empty(self.workers, device=self.device)
        self.model.train()
        for k in range(self.workers):
            loss = F.cross_entropy(self.model(x[k]), y[k])
            g = torch.autograd.grad(loss, self.params)
            grads[k] = torch.cat([t.reshape(-1) for t in g])
            losses[k] = loss.detach()
        return grads, losses

    def set_gradient(self, flat: torch.Tensor) -> None:
        """Write a flat gradient into the parameters' .grad fields (for the optimizer)."""
        offset = 0
        for p in self.params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).to(p.device, p.dtype).clone()
            offset += n

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Test-set (loss, accuracy) of the current model."""
        self.model.eval()
        x = self.data.x_test.to(self.device)
        y = self.data.y_test.to(self.device)
        logits = self.model(x)
        loss = F.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
        return loss, accuracy

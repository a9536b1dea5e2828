"""K data-parallel workers computing real gradients of one shared model.

Synchronous SGD keeps every worker's parameters identical, so one model serves all K:
worker k's gradient at iteration t is the gradient on its own slice of the global batch.
Iteration t uses samples order[t*K*B : (t+1)*K*B] of an epoch-wise seeded permutation,
worker k taking the k-th block of B: K workers see exactly the union batch one worker of
batch K*B would see (the equivalence the tests check).

All K gradients come from ONE batched call where the model allows it (and, on CPU, where it
pays: not for convolutions): torch.func's
`vmap(grad_and_value(loss))` over the worker dimension, with the parameters passed in by
`functional_call`. Models with BatchNorm running statistics or recurrent layers (see
`profile.vmappable`) use a loop over workers instead; so does `batched=False`. In the loop,
BatchNorm running statistics are updated once per worker batch, K times an iteration.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import profile
from .datasets import Dataset

__all__ = ["Workers"]


class Workers:
    """Gradients of K workers on a shared model, as a [K, n] float32 tensor.

    Args:
        model: the shared model (its parameters are updated by the caller's optimizer).
        data: the dataset.
        workers: K.
        batch_size: samples per worker per iteration.
        seed_sequence: seeds the sampling order (numpy SeedSequence child for data).
        device: torch device for compute.
        batched: True forces one vmapped call (error if the model cannot), False forces the
            per-worker loop, None (default) batches when `profile.vmappable(model)` and it
            pays: on CUDA always; on CPU only without convolutions (vmapped convolutions ran
            at 0.6x the loop's speed on a 2-core CPU, `python -m simnet.bench workers`).
    """

    def __init__(self, model: nn.Module, data: Dataset, workers: int, batch_size: int,
                 seed_sequence: np.random.SeedSequence, device: torch.device,
                 batched: bool | None = None) -> None:
        self.model = model.to(device)
        self.data = data
        self.workers = workers
        self.batch_size = batch_size
        self.device = device
        self._rng = np.random.default_rng(seed_sequence)
        self._order = np.empty(0, dtype=np.int64)
        self._x = data.x_train.to(device)
        self._y = data.y_train.to(device)
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.numel = sum(p.numel() for p in self.params)
        can = profile.vmappable(self.model)
        if batched and not can:
            raise ValueError("this model has BatchNorm running statistics or recurrent layers; "
                             "its gradients cannot be vmapped (use batched=None or False)")
        pays = device.type != "cpu" or not any(isinstance(m, nn.modules.conv._ConvNd)
                                               for m in self.model.modules())
        self.batched = (can and pays) if batched is None else batched
        self._grad_fn = None

    def next_indices(self) -> np.ndarray:
        need = self.workers * self.batch_size
        while len(self._order) < need:  # draw whole epochs; the tail carries over
            self._order = np.concatenate([self._order, self._rng.permutation(len(self._x))])
        taken, self._order = self._order[:need], self._order[need:]
        return taken

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.from_numpy(self.next_indices()).to(self.device)
        x = self._x[idx].view(self.workers, self.batch_size, *self._x.shape[1:])
        y = self._y[idx].view(self.workers, self.batch_size, *self._y.shape[1:])
        return x, y

    def gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One iteration's gradients [K, n] and per-worker training losses [K]."""
        x, y = self._batch()
        self.model.train()
        if self.batched:
            return self._batched(x, y)
        return self._looped(x, y)

    def _looped(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grads = torch.empty(self.workers, self.numel, device=self.device)
        losses = torch.empty(self.workers, device=self.device)
        for k in range(self.workers):
            loss = F.cross_entropy(self.model(x[k]), y[k])
            g = torch.autograd.grad(loss, self.params)
            grads[k] = torch.cat([t.reshape(-1) for t in g])
            losses[k] = loss.detach()
        return grads, losses

    def _batched(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._grad_fn is None:
            model = self.model

            def loss(params, buffers, xb, yb):
                return F.cross_entropy(torch.func.functional_call(model, (params, buffers), (xb,)), yb)

            # Parameters and buffers are shared (in_dims None); each worker gets its own
            # batch; dropout masks differ per worker as they would on K machines.
            self._grad_fn = torch.func.vmap(torch.func.grad_and_value(loss), in_dims=(None, None, 0, 0),
                                            randomness="different")
        params = {n: p.detach() for n, p in zip(self._names, self.params)}
        buffers = dict(self.model.named_buffers())
        g, losses = self._grad_fn(params, buffers, x, y)
        grads = torch.cat([g[n].reshape(self.workers, -1) for n in self._names], dim=1)
        return grads, losses.detach()

    def set_gradient(self, flat: torch.Tensor) -> None:
        """Write a flat gradient into the parameters' .grad fields (for the optimizer)."""
        offset = 0
        for p in self.params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).to(p.device, p.dtype).clone()
            offset += n

    @torch.no_grad()
    def evaluate(self, max_samples: int | None = None) -> tuple[float, float]:
        """Test-set (loss, accuracy) of the current model (accuracy per character for text)."""
        self.model.eval()
        x_all, y_all = self.data.x_test[:max_samples], self.data.y_test[:max_samples]
        loss_sum, correct = 0.0, 0.0
        for start in range(0, len(x_all), 1024):  # chunks bound activation memory
            x = x_all[start:start + 1024].to(self.device)
            y = y_all[start:start + 1024].to(self.device)
            logits = self.model(x)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(dim=1) == y).sum().item()
        return loss_sum / y_all.numel(), correct / y_all.numel()

    def _sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.x_train[0], self.data.y_train[0]

    def layer_sizes(self) -> list[tuple[str, int]]:
        """(layer, gradient coordinates) in the order backward produces them; sums to numel."""
        return profile.layer_sizes(self.model, *self._sample())

    def flops_per_sample(self) -> float:
        """FLOPs of one forward + backward per sample (FlopCounterMode; see workload.profile)."""
        return profile.flops_per_sample(self.model, *self._sample())

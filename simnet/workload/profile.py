"""Static profiles of a model, computed on meta tensors (shapes only: no memory, no compute).

- `layer_sizes`: per-layer gradient sizes in the order backward produces them, for the
  engine's overlap model (communication of a layer's bucket can start once it is ready).
- `flops_per_sample`: FLOPs of one forward + backward per sample, as counted by
  `torch.utils.flop_counter.FlopCounterMode`: matrix products and convolutions only, one
  multiply-add = 2 FLOPs; elementwise ops (ReLU, bias adds, norms, the loss) count nothing.
  For an MLP with weight matrices W_1..W_L (entries |W_i|) this is exactly
      2·Σ|W_i| (forward) + 2·Σ|W_i| (weight gradients) + 2·Σ_{i>=2}|W_i| (input gradients)
    = 6·Σ|W_i| − 2·|W_1|,
  since autograd computes no gradient for the input data of the first layer.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["meta_state", "layer_sizes", "flops_per_sample", "vmappable"]


def meta_state(model: nn.Module, requires_grad: bool = False) -> dict[str, torch.Tensor]:
    """Meta-device stand-ins for every parameter and buffer, by qualified name."""
    state = {}
    for name, p in model.named_parameters():
        state[name] = torch.empty_like(p, device="meta").requires_grad_(requires_grad and p.requires_grad)
    for name, b in model.named_buffers():
        state[name] = torch.empty_like(b, device="meta")
    return state


def _meta_batch(sample_x: torch.Tensor, sample_y: torch.Tensor, batch: int):
    x = torch.empty((batch, *sample_x.shape), dtype=sample_x.dtype, device="meta")
    y = torch.zeros((batch, *sample_y.shape), dtype=sample_y.dtype, device="meta")
    return x, y


def _loss(model: nn.Module, state: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # Eval mode: the counted ops (matmuls, convolutions) and the order of gradients are
    # those of training, while meta BatchNorm/dropout in train mode decompose ~5x slower.
    training = model.training
    try:
        return F.cross_entropy(torch.func.functional_call(model.eval(), state, (x,)), y)
    finally:
        model.train(training)


def layer_sizes(model: nn.Module, sample_x: torch.Tensor, sample_y: torch.Tensor) -> list[tuple[str, int]]:
    """(layer name, gradient coordinates) in the order backward makes them ready.

    A layer is the module owning the parameters (weight and bias together); the sizes sum to
    the model's trainable parameter count. sample_x/sample_y: one sample (no batch dim).
    """
    state = meta_state(model, requires_grad=True)
    ready: list[str] = []
    handles = [state[n].register_hook(lambda g, n=n: ready.append(n))
               for n, p in model.named_parameters() if p.requires_grad]
    try:
        _loss(model, state, *_meta_batch(sample_x, sample_y, 2)).backward()
    finally:
        for h in handles:
            h.remove()
    sizes = dict((n, p.numel()) for n, p in model.named_parameters())
    layers: list[tuple[str, int]] = []
    for name in ready:
        owner = name.rpartition(".")[0] or name
        if layers and layers[-1][0] == owner:
            layers[-1] = (owner, layers[-1][1] + sizes[name])
        else:
            layers.append((owner, sizes[name]))
    return layers


def flops_per_sample(model: nn.Module, sample_x: torch.Tensor, sample_y: torch.Tensor,
                     batch: int = 2) -> float:
    """FLOPs of one training forward + backward, per sample (see the module docstring)."""
    state = meta_state(model, requires_grad=True)
    x, y = _meta_batch(sample_x, sample_y, batch)
    counter = FlopCounterMode(display=False)
    with counter:
        _loss(model, state, x, y).backward()
    return counter.get_total_flops() / batch


def vmappable(model: nn.Module) -> bool:
    """Whether torch.func can vmap this model's gradient over workers.

    BatchNorm with running statistics updates shared buffers in place (which vmap refuses:
    one buffer, K different batch means), and recurrent layers' fused kernels have no
    batching rule; both fall back to a per-worker loop.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            return False
        if isinstance(m, nn.RNNBase):
            return False
    return True

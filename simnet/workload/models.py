"""The model zoo: `build_model(name, dataset, seed=..., **arch)`.

Models read their input shape and class count from the Dataset; `arch` holds the
architecture parameters of each (see `arch_params`). Classifiers return logits [B, classes];
`char_lstm` returns [B, vocab, T] (class dimension second), so `F.cross_entropy(out, y)` and
`out.argmax(dim=1) == y` work unchanged for every model.

| name         | data          | arch (defaults)                                   |
|--------------|---------------|---------------------------------------------------|
| mlp          | image         | hidden=[256, 256]; QSGD's MNIST MLP is hidden=[4096] |
| cnn          | image         | channels=(32, 64), hidden=128                     |
| resnet_small | image         | blocks=1 (ResNet-8), widths=(16, 32, 64), norm='group' |
| char_lstm    | text          | embed=64, hidden=256, layers=1                    |
| alexnet      | image >= 63px | dropout=0.5                                       |
| vgg19        | image >= 32px | dropout=0.5                                       |
| resnet50     | image         | (none)                                            |
| resnet152    | image         | (none)                                            |
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import nn

from . import convnets
from .datasets import Dataset

__all__ = ["build_model", "ModelError", "names", "arch_params"]


class ModelError(ValueError):
    """An unknown model name, an invalid architecture parameter or an unsuitable dataset."""


def _mlp(data: Dataset, hidden: list[int] = (256, 256)) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = data.num_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, data.num_classes))
    return nn.Sequential(*layers)


def _cnn(data: Dataset, channels: tuple[int, ...] = (32, 64), hidden: int = 128) -> nn.Module:
    c, h, _ = data.input_shape
    return convnets.small_cnn(c, data.num_classes, h, tuple(channels), hidden)


def _resnet_small(data: Dataset, blocks: int = 1, widths: tuple[int, ...] = (16, 32, 64),
                  norm: str = "group") -> nn.Module:
    return convnets.resnet_small(data.input_shape[0], data.num_classes, blocks, tuple(widths), norm)


class CharLSTM(nn.Module):
    """Embedding -> LSTM -> linear head; next-character logits [B, vocab, T] for x [B, T]."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(x))
        return self.head(out).transpose(1, 2)


def _char_lstm(data: Dataset, embed: int = 64, hidden: int = 256, layers: int = 1) -> nn.Module:
    return CharLSTM(data.num_classes, embed, hidden, layers)


_BUILDERS: dict[str, tuple[str, Callable[..., nn.Module]]] = {
    "mlp": ("image", _mlp),
    "cnn": ("image", _cnn),
    "resnet_small": ("image", _resnet_small),
    "char_lstm": ("text", _char_lstm),
    "alexnet": ("image", lambda d, dropout=0.5: convnets.alexnet(d.input_shape[0], d.num_classes, dropout)),
    "vgg19": ("image", lambda d, dropout=0.5: convnets.vgg19(d.input_shape[0], d.num_classes, dropout)),
    "resnet50": ("image", lambda d: convnets.resnet(d.input_shape[0], d.num_classes, (3, 4, 6, 3))),
    "resnet152": ("image", lambda d: convnets.resnet(d.input_shape[0], d.num_classes, (3, 8, 36, 3))),
}


def names() -> list[str]:
    """Every model `build_model` knows."""
    return sorted(_BUILDERS)


def arch_params(name: str) -> dict[str, object]:
    """The architecture parameters `name` takes, with their defaults."""
    _, builder = _lookup(name)
    params = list(inspect.signature(builder).parameters.values())[1:]
    return {p.name: p.default for p in params}


def _lookup(name: str):
    if name not in _BUILDERS:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(names())}")
    return _BUILDERS[name]


def _check_input(name: str, model: nn.Module, data: Dataset) -> None:
    """One forward pass on meta tensors (no memory, no compute) to catch too-small inputs."""
    from .profile import meta_state

    x = torch.empty((1, *data.input_shape), dtype=data.x_train.dtype, device="meta")
    training = model.training
    try:  # eval mode and no autograd: same shapes, far fewer meta decompositions
        with torch.no_grad():
            torch.func.functional_call(model.eval(), meta_state(model), (x,))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ModelError(f"model {name!r} cannot take inputs of shape {list(data.input_shape)} "
                         f"from dataset {data.name!r}: {first}") from None
    finally:
        model.train(training)


def build_model(name: str, dataset: Dataset, *, seed: int = 0, **arch) -> nn.Module:
    """Build `name` for `dataset` with parameters initialised from `seed`.

    The global RNG is left untouched. Unknown `arch` keys, bad values and datasets of the
    wrong kind (text for an image model or the reverse) raise ModelError.
    """
    kind, builder = _lookup(name)
    if dataset.kind != kind:
        raise ModelError(f"model {name!r} needs a dataset of kind {kind!r}; "
                         f"{dataset.name!r} is {dataset.kind!r}")
    unknown = sorted(set(arch) - set(arch_params(name)))
    if unknown:
        takes = ", ".join(arch_params(name)) or "none"
        raise ModelError(f"model {name!r} has no parameter {unknown[0]!r} (takes: {takes})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = builder(dataset, **arch)
        except (TypeError, ValueError) as err:
            raise ModelError(f"model {name!r}: {err}") from None
    _check_input(name, model, dataset)
    return model

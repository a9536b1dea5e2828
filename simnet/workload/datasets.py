"""Datasets that ship offline: nothing is downloaded at run time.

`digits`: scikit-learn's 8x8 handwritten digits (1,797 images, shipped inside the
scikit-learn package), features scaled to [0, 1], a fixed 80/20 train/test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Dataset", "load_dataset", "DatasetError"]


class DatasetError(ValueError):
    """A dataset is unknown or not installed; the message says how to get it."""


@dataclass(frozen=True)
class Dataset:
    """Tensors of one dataset, on the CPU. x: float32 [N, features]; y: int64 [N]."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def num_features(self) -> int:
        return int(self.x_train[0].numel())


def _split(name: str, x: np.ndarray, y: np.ndarray, classes: int, test_fraction: float) -> Dataset:
    # A fixed permutation (seed 0) so every run and every worker sees the same split.
    order = np.random.default_rng(0).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    as_x = lambda idx: torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32))
    as_y = lambda idx: torch.from_numpy(np.ascontiguousarray(y[idx], dtype=np.int64))
    return Dataset(name, as_x(train), as_y(train), as_x(test), as_y(test), classes)


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _split("digits", bunch.data / 16.0, bunch.target, 10, test_fraction=0.2)


_LOADERS = {"digits": _digits}


def load_dataset(name: str) -> Dataset:
    """Load a dataset by name; unknown names raise DatasetError listing the known ones."""
    if name not in _LOADERS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(_LOADERS))}")
    return _LOADERS[name]()

"""Datasets that ship offline: nothing is downloaded at run time.

- `digits`: scikit-learn's 8x8 handwritten digits (1,797 images, inside the scikit-learn
  package), x float32 [N, 1, 8, 8] in [0, 1], a fixed 80/20 train/test split.
- `fashion-mnist`: Zalando's Fashion-MNIST in full (60,000 train + 10,000 test images,
  28x28 grey, 10 classes) from Debian's `dataset-fashion-mnist` (IDX files, gzipped or not);
  x float32 [N, 1, 28, 28] in [0, 1].
- `fortunes`: a character-level language-modelling corpus, the English prose of Debian's
  `fortunes` package (~2.4 MB: quotations, anecdotes, poems, definitions). x int64 [N, T]
  windows of T characters, y int64 [N, T] the next character of each position.
- `synthetic`: seeded Gaussian images of a fixed shape (default 3x224x224, 1000 classes) for
  throughput-only runs of paper-scale models; it carries no signal worth learning.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["Dataset", "load_dataset", "DatasetError", "names", "parse_idx"]

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
# Not prose: pictures drawn in characters.
_FORTUNES_SKIP = {"art", "ascii-art"}


class DatasetError(ValueError):
    """A dataset is unknown, not installed or malformed; the message says how to get it."""


@dataclass(frozen=True)
class Dataset:
    """Tensors of one dataset, on the CPU.

    kind 'image': x float32 [N, C, H, W], y int64 [N] class labels.
    kind 'text':  x int64 [N, T] character ids, y int64 [N, T] next-character ids;
                  `vocab[i]` is the character of id i and num_classes == len(vocab).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    kind: str = "image"
    vocab: str = ""

    @property
    def num_features(self) -> int:
        """Values per sample (C*H*W for images, T for text)."""
        return int(self.x_train[0].numel())

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample: (C, H, W) or (T,)."""
        return tuple(self.x_train.shape[1:])


def _split(name: str, x: np.ndarray, y: np.ndarray, classes: int, test_fraction: float,
           **extra) -> Dataset:
    # A fixed permutation (seed 0) so every run and every worker sees the same split.
    order = np.random.default_rng(0).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    x_dtype = np.int64 if extra.get("kind") == "text" else np.float32
    as_x = lambda idx: torch.from_numpy(np.ascontiguousarray(x[idx], dtype=x_dtype))
    as_y = lambda idx: torch.from_numpy(np.ascontiguousarray(y[idx], dtype=np.int64))
    return Dataset(name, as_x(train), as_y(train), as_x(test), as_y(test), classes, **extra)


def _digits(path: str | None) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).reshape(-1, 1, 8, 8)
    return _split("digits", x, bunch.target, 10, test_fraction=0.2)


def parse_idx(raw: bytes) -> np.ndarray:
    """Decode an IDX file (LeCun's MNIST format; gzip is detected by its magic bytes).

    Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions,
    then each dimension as a big-endian uint32; the data follow in C order.
    """
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DatasetError("not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    start = 4 + 4 * ndim
    if len(raw) - start != int(np.prod(dims)):
        raise DatasetError(f"IDX file holds {len(raw) - start} bytes of data, header says {dims.tolist()}")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


def _idx_file(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"fashion-mnist: {stem}[.gz] not found in {folder}; "
        f"run `apt-get install dataset-fashion-mnist` or set the dataset path"
    )


def _fashion(path: str | None) -> Dataset:
    folder = Path(path) if path else FASHION_DIR
    arrays = {}
    for part, prefix in (("train", "train"), ("test", "t10k")):
        images = parse_idx(_idx_file(folder, f"{prefix}-images-idx3-ubyte").read_bytes())
        labels = parse_idx(_idx_file(folder, f"{prefix}-labels-idx1-ubyte").read_bytes())
        if images.ndim != 3 or labels.shape != images.shape[:1]:
            raise DatasetError(f"fashion-mnist: {part} images {images.shape} and labels {labels.shape} disagree")
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        arrays[part] = (x, torch.from_numpy(labels.astype(np.int64)))
    # The official split is kept: 60,000 train, 10,000 test.
    return Dataset("fashion-mnist", *arrays["train"], *arrays["test"], num_classes=10)


def _fortunes_text(path: str | None) -> str:
    root = Path(path) if path else FORTUNES_DIR
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.iterdir() if p.is_file() and not p.is_symlink()
                       and p.suffix not in (".dat", ".u8") and p.name not in _FORTUNES_SKIP)
    else:
        files = []
    if not files:
        raise DatasetError(f"fortunes: no text in {root}; run `apt-get install fortunes` or set the dataset path")
    text = "\n".join(p.read_text(encoding="utf-8", errors="ignore") for p in files)
    text = text.replace("\n%\n", "\n\n").replace("\t", " ")
    # Printable ASCII and newlines only: overstrike sequences and stray Unicode would
    # otherwise add rare symbols to the vocabulary.
    text = "".join(ch for ch in text if ch == "\n" or " " <= ch <= "~")
    return text


def _fortunes(path: str | None, seq_len: int = 64) -> Dataset:
    text = _fortunes_text(path)
    vocab = "".join(sorted(set(text)))
    ids = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    lookup = np.zeros(128, dtype=np.int64)
    lookup[np.frombuffer(vocab.encode("ascii"), dtype=np.uint8)] = np.arange(len(vocab))
    ids = lookup[ids]
    n = (len(ids) - 1) // seq_len
    if n < 2:
        raise DatasetError(f"fortunes: corpus of {len(ids)} characters is shorter than two windows of {seq_len}")
    # Non-overlapping windows; the target is the input shifted by one character.
    x = ids[: n * seq_len].reshape(n, seq_len)
    y = ids[1: n * seq_len + 1].reshape(n, seq_len)
    return _split("fortunes", x, y, len(vocab), test_fraction=0.05, kind="text", vocab=vocab)


def _synthetic(path: str | None, image_size: int = 224, channels: int = 3, num_classes: int = 1000,
               samples: int = 64, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    shape = (channels, image_size, image_size)
    make = lambda n: (torch.randn(n, *shape, generator=g),
                      torch.randint(0, num_classes, (n,), generator=g))
    return Dataset("synthetic", *make(samples), *make(max(1, samples // 4)), num_classes=num_classes)


_LOADERS = {"digits": _digits, "fashion-mnist": _fashion, "fortunes": _fortunes, "synthetic": _synthetic}


def names() -> list[str]:
    """Every dataset `load_dataset` knows."""
    return sorted(_LOADERS)


@functools.lru_cache(maxsize=4)
def _cached(name: str, path: str | None, options: tuple) -> Dataset:
    return _LOADERS[name](path, **dict(options))


def load_dataset(name: str, path: str | None = None, **options) -> Dataset:
    """Load a dataset by name (cached: callers must not modify the tensors).

    path: where the files are, overriding the Debian package's location (fashion-mnist:
    a folder of IDX files; fortunes: a text file or folder of text files).
    options: `fortunes` takes seq_len (characters per window, default 64); `synthetic`
    takes image_size (pixels), channels, num_classes, samples (train; test gets a quarter)
    and seed. Unknown names or options raise DatasetError.
    """
    if name not in _LOADERS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(names())}")
    try:
        return _cached(name, None if path is None else str(path), tuple(sorted(options.items())))
    except TypeError as err:  # an option the loader does not take
        raise DatasetError(f"dataset {name!r}: {err}") from None

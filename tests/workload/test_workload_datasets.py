"""Datasets: shapes, labels, ranges; the IDX parser; the one-line errors for missing files."""

import gzip
import os

import numpy as np
import pytest
import torch

from simnet.workload.datasets import FASHION_DIR, FORTUNES_DIR, DatasetError, load_dataset, parse_idx


def _installed(folder, package):
    """Skip on a developer machine without the Debian package; CI installs it, so fail there."""
    if not folder.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{folder} missing on CI: .ci/run must `apt-get install {package}`")
        pytest.skip(f"apt-get install {package}")


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def test_digits_images_in_unit_range():
    d = load_dataset("digits")
    assert d.x_train.shape == (1438, 1, 8, 8) and d.x_test.shape == (359, 1, 8, 8)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.x_train.min() == 0 and d.x_train.max() == 1
    assert set(d.y_train.tolist()) == set(range(10)) and d.num_classes == 10
    assert d.kind == "image" and d.num_features == 64


def test_fashion_mnist_in_full():
    _installed(FASHION_DIR, "dataset-fashion-mnist")
    d = load_dataset("fashion-mnist")
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert d.x_train.dtype == torch.float32 and 0 <= d.x_train.min() and d.x_train.max() == 1
    # The published dataset is balanced: 6,000 train and 1,000 test images per class.
    assert torch.bincount(d.y_train).tolist() == [6000] * 10
    assert torch.bincount(d.y_test).tolist() == [1000] * 10


@pytest.mark.parametrize("compress", [False, True])
def test_parse_idx_reads_what_was_written(compress):
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    raw = _idx(a)
    np.testing.assert_array_equal(parse_idx(gzip.compress(raw) if compress else raw), a)


def test_parse_idx_rejects_bad_files():
    with pytest.raises(DatasetError, match="magic"):
        parse_idx(b"\x00\x00\x0d\x01" + bytes(8))  # float IDX
    with pytest.raises(DatasetError, match="header says"):
        parse_idx(_idx(np.zeros((4, 4)))[:-1])


def test_fashion_mnist_from_a_path(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 3)):
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(_idx(rng.integers(0, 256, (n, 28, 28)))))
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(np.arange(n) % 10))
    d = load_dataset("fashion-mnist", path=tmp_path)
    assert d.x_train.shape == (6, 1, 28, 28) and d.y_test.tolist() == [0, 1, 2]


def test_missing_fashion_mnist_is_a_one_line_error(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion-mnist", path=tmp_path / "nowhere")
    message = str(err.value)
    assert "\n" not in message and "apt-get install dataset-fashion-mnist" in message


def test_fortunes_windows_predict_the_next_character():
    _installed(FORTUNES_DIR, "fortunes")
    d = load_dataset("fortunes")
    assert d.kind == "text" and d.x_train.dtype == torch.int64 and d.x_train.shape[1] == 64
    assert len(d.x_train) + len(d.x_test) > 30_000  # ~2.4 MB of prose
    assert torch.equal(d.x_train[:, 1:], d.y_train[:, :-1])
    assert d.num_classes == len(d.vocab) and int(d.x_train.max()) < d.num_classes
    text = "".join(d.vocab[i] for i in d.x_train[:200].flatten().tolist())
    assert text.count(" the ") > 20  # English prose


def test_text_corpus_from_a_path(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("abcab\tc\u00e9" * 40)
    d = load_dataset("fortunes", path=corpus, seq_len=8)
    assert d.vocab == " abc" and d.x_train.shape[1] == 8


def test_synthetic_is_seeded_and_shaped():
    a = load_dataset("synthetic", image_size=32, num_classes=7, samples=8, seed=1)
    b = load_dataset("synthetic", image_size=32, num_classes=7, samples=8, seed=2)
    assert a.x_train.shape == (8, 3, 32, 32) and a.x_test.shape == (2, 3, 32, 32)
    assert int(a.y_train.max()) < 7 and not torch.equal(a.x_train, b.x_train)
    torch.testing.assert_close(a.x_train, load_dataset("synthetic", image_size=32, num_classes=7,
                                                       samples=8, seed=1).x_train)


def test_unknown_dataset_or_option():
    with pytest.raises(DatasetError, match="known: digits"):
        load_dataset("mnist")
    with pytest.raises(DatasetError, match="image_sise"):
        load_dataset("synthetic", image_sise=3)

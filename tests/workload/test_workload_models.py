"""The model zoo: published parameter counts and FLOPs, shapes, errors, the FLOP formula."""

import pytest
import torch

from simnet.workload import build_model, load_dataset
from simnet.workload.models import ModelError, names
from simnet.workload.profile import flops_per_sample, layer_sizes


def _numel(model):
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def imagenet():
    return load_dataset("synthetic", image_size=224, samples=4)


# torchvision's published figures: parameters, and forward GMACs ("GFLOPS" in its docs).
PAPER = {"resnet50": (25_557_032, 4.09), "resnet152": (60_192_808, 11.51),
         "vgg19": (143_667_240, 19.63), "alexnet": (61_100_840, 0.71)}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_scale_parameters_and_flops(name, imagenet):
    model = build_model(name, imagenet)  # real CPU tensors: quicker than a meta device context
    params, gmacs = PAPER[name]
    assert _numel(model) == params
    # Forward = 2 FLOPs per MAC; backward twice that, less the first layer's input gradient.
    if name == "resnet152":
        return  # same code path as resnet50; its FLOP count only costs test time
    fwd = 2 * gmacs * 1e9
    assert 3 * fwd * 0.97 < flops_per_sample(model, imagenet.x_train[0], imagenet.y_train[0]) < 3 * fwd * 1.01


def test_qsgd_mlp_for_784_inputs():
    data = load_dataset("synthetic", image_size=28, channels=1, num_classes=10, samples=4)
    model = build_model("mlp", data, hidden=[4096])
    assert _numel(model) == 784 * 4096 + 4096 + 4096 * 10 + 10


@pytest.mark.parametrize("hidden", [[32], [256, 128], [4096]])
def test_mlp_flops_formula(hidden):
    """FlopCounterMode: 2 FLOPs per multiply-add in the forward, 2 for each weight gradient
    and 2 for each input gradient except the first layer's: 6·ΣW − 2·W1 exactly."""
    d = load_dataset("digits")
    model = build_model("mlp", d, hidden=hidden)
    widths = [d.num_features, *hidden, d.num_classes]
    weights = [a * b for a, b in zip(widths, widths[1:])]
    assert flops_per_sample(model, d.x_train[0], d.y_train[0]) == 6 * sum(weights) - 2 * weights[0]


def test_layer_sizes_come_in_backward_order():
    d = load_dataset("digits")
    model = build_model("mlp", d, hidden=[32, 16])
    assert layer_sizes(model, d.x_train[0], d.y_train[0]) == [("5", 16 * 10 + 10), ("3", 32 * 16 + 16),
                                                              ("1", 64 * 32 + 32)]
    res = build_model("resnet_small", d)
    sizes = layer_sizes(res, d.x_train[0], d.y_train[0])
    assert sizes[0][0] == "8" and sizes[-1][0] == "0"  # head first, stem conv last
    assert sum(n for _, n in sizes) == _numel(res)


@pytest.mark.parametrize("name,arch", [("mlp", {}), ("cnn", {}), ("resnet_small", {}),
                                       ("resnet_small", {"blocks": 3, "norm": "batch"})])
def test_small_models_classify_images(name, arch):
    d = load_dataset("digits")
    assert build_model(name, d, **arch)(d.x_train[:5]).shape == (5, 10)


def test_resnet20_size():
    d = load_dataset("synthetic", image_size=28, channels=1, num_classes=10, samples=4)
    # He et al. 2016's ResNet-20 has 269,722 parameters (0.27M) with zero-padding shortcuts on
    # 3 channels; here the two 1x1 projection shortcuts (+2,752) and 1 input channel (-288).
    assert _numel(build_model("resnet_small", d, blocks=3)) == 269_722 + 2_752 - 288


def test_char_lstm_puts_classes_second():
    with pytest.raises(ModelError, match="kind 'text'"):
        build_model("char_lstm", load_dataset("digits"))
    d = load_dataset("fortunes", path=__file__, seq_len=16)
    out = build_model("char_lstm", d, hidden=32)(d.x_train[:3])
    assert out.shape == (3, d.num_classes, 16)


def test_seeded_build_is_reproducible():
    d = load_dataset("digits")
    a, b = build_model("cnn", d, seed=4), build_model("cnn", d, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(next(a.parameters()), next(build_model("cnn", d, seed=5).parameters()))


def test_mlp_on_digits_has_the_expected_size():
    model = build_model("mlp", load_dataset("digits"), hidden=[32], seed=0)
    assert _numel(model) == 64 * 32 + 32 + 32 * 10 + 10


def test_errors_name_the_problem():
    d = load_dataset("digits")
    with pytest.raises(ModelError, match="known: alexnet"):
        build_model("lenet", d)
    with pytest.raises(ModelError, match="no parameter 'width'.*takes: hidden"):
        build_model("mlp", d, width=3)
    with pytest.raises(ModelError, match="cannot take inputs of shape \\[1, 8, 8\\]"):
        build_model("alexnet", d)
    with pytest.raises(ModelError, match="norm must be"):
        build_model("resnet_small", d, norm="layer")
    assert {"mlp", "cnn", "resnet_small", "char_lstm", "resnet152"} <= set(names())

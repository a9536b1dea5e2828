"""K workers' real gradients: union-batch equivalence, batched (vmap) == looped, fallbacks."""

import numpy as np
import pytest
import torch

from simnet import compression
from simnet.workload import Workers, build_model, load_dataset
from simnet.workload.profile import flops_per_sample

CPU = torch.device("cpu")
VMAPPABLE = [("mlp", {"hidden": [64]}), ("cnn", {}), ("resnet_small", {})]


def _workers(model, data, k, b, batched=None, seed=7):
    return Workers(model, data, k, b, np.random.SeedSequence(seed), CPU, batched=batched)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("name,arch", VMAPPABLE)
def test_none_mean_of_k_workers_is_the_union_batch_gradient(name, arch, digits):
    """K workers of batch B, averaged after fp32 ('none') encoding, equal one worker of K*B."""
    model = build_model(name, digits, seed=1, **arch)
    k, b = 4, 8
    many, one = _workers(model, digits, k, b), _workers(model, digits, 1, k * b)
    none = compression.get("none")
    for _ in range(3):  # several iterations: the sampling order stays aligned
        grads, losses = many.gradients()
        mean = torch.stack([none.decode(none.encode(g), g.numel()) for g in grads]).mean(0)
        union, union_loss = one.gradients()
        torch.testing.assert_close(mean, union[0])
        torch.testing.assert_close(losses.mean(), union_loss[0])


@pytest.mark.parametrize("name,arch", VMAPPABLE)
def test_batched_gradients_equal_looped(name, arch, digits):
    model = build_model(name, digits, seed=2, **arch)
    batched, looped = _workers(model, digits, 5, 6, True), _workers(model, digits, 5, 6, False)
    assert batched.batched and not looped.batched
    for _ in range(2):
        (gb, lb), (gl, ll) = batched.gradients(), looped.gradients()
        assert gb.shape == (5, batched.numel)
        torch.testing.assert_close(gb, gl)
        torch.testing.assert_close(lb, ll)
    assert not torch.equal(gb[0], gb[1])  # workers really see different batches


def test_batchnorm_and_lstm_fall_back_to_the_loop(digits):
    bn = build_model("resnet_small", digits, norm="batch")
    assert not _workers(bn, digits, 2, 4).batched
    with pytest.raises(ValueError, match="cannot be vmapped"):
        _workers(bn, digits, 2, 4, batched=True)
    text = load_dataset("fortunes", path=__file__, seq_len=16)
    lstm = _workers(build_model("char_lstm", text, hidden=32), text, 3, 4)
    grads, losses = lstm.gradients()
    assert not lstm.batched and grads.shape == (3, lstm.numel)
    # At initialisation the prediction is near uniform: loss ~ ln(vocabulary size).
    assert abs(losses.mean().item() - np.log(text.num_classes)) < 0.3
    loss, accuracy = lstm.evaluate()
    assert loss > 0 and 0 <= accuracy <= 1


def test_default_batches_where_it_pays_on_cpu(digits):
    assert _workers(build_model("mlp", digits, hidden=[16]), digits, 2, 4).batched
    assert not _workers(build_model("resnet_small", digits), digits, 2, 4).batched
    assert _workers(build_model("resnet_small", digits), digits, 2, 4, batched=True).batched


def test_layer_sizes_and_flops(digits):
    w = _workers(build_model("resnet_small", digits), digits, 2, 4)
    sizes = w.layer_sizes()
    assert sum(n for _, n in sizes) == w.numel and len(sizes) > 10
    assert w.flops_per_sample() == flops_per_sample(w.model, digits.x_train[0], digits.y_train[0]) > 0


def test_set_gradient_and_evaluate(digits):
    w = _workers(build_model("mlp", digits, hidden=[16]), digits, 2, 4)
    flat = torch.arange(w.numel, dtype=torch.float32)
    w.set_gradient(flat)
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in w.params]), flat)
    loss, accuracy = w.evaluate()
    assert loss > 0 and 0 <= accuracy <= 1
    assert w.evaluate(max_samples=50)[1] * 50 == pytest.approx(round(w.evaluate(max_samples=50)[1] * 50))

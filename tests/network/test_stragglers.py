"""Straggler draws: order statistics against closed forms, seeding, validation."""

import numpy as np
import pytest

from simnet.network import straggler_factors


def harmonic(n):
    return sum(1.0 / i for i in range(1, n + 1))


def test_mean_of_max_matches_harmonic():
    # max over p of (t0 + Exp(mean)): E = t0 + mean * H_p. With factor = 1 + Exp(mean) and
    # t0 = 1. Std of the max < mean * pi / sqrt(6); 40k iterations -> SE < 0.0065 mean;
    # tolerance 0.03 mean (> 4 SE).
    p, mean, iters = 16, 0.2, 40_000
    f = straggler_factors({"kind": "exponential", "mean": mean}, p, iters, seed=1)
    assert f.shape == (iters, p)
    assert f.max(axis=1).mean() == pytest.approx(1 + mean * harmonic(p), abs=0.03 * mean)


@pytest.mark.parametrize("backups", [1, 4, 8])
def test_backup_worker_order_statistic(backups):
    # Waiting for the fastest p - b of p: E[X_(p-b)] = mean * (H_p - H_b).
    p, mean, iters = 16, 0.5, 40_000
    f = straggler_factors({"kind": "shifted_exponential", "mean": mean}, p, iters, seed=2)
    kth = np.sort(f, axis=1)[:, p - backups - 1]
    want = 1 + mean * (harmonic(p) - harmonic(backups))
    assert kth.mean() == pytest.approx(want, abs=0.03 * mean)


def test_adding_workers_keeps_existing_draws():
    spec = {"kind": "lognormal", "sigma": 0.3}
    a = straggler_factors(spec, 4, 50, seed=7)
    b = straggler_factors(spec, 9, 50, seed=7)
    assert np.array_equal(a, b[:, :4])
    assert not np.array_equal(a, straggler_factors(spec, 4, 50, seed=8))


@pytest.mark.parametrize("spec", [None, {"kind": "none"}, {"kind": "lognormal", "sigma": 0.5},
                                  {"kind": "pareto", "alpha": 3.0},
                                  {"kind": "pareto", "alpha": 2.0, "scale": 0.5},
                                  {"kind": "exponential", "mean": 0.1}])
def test_factors_at_least_one(spec):
    f = straggler_factors(spec, 5, 200, seed=0)
    assert f.shape == (200, 5) and np.all(f >= 1.0) and np.all(np.isfinite(f))


def test_persistent():
    f = straggler_factors({"kind": "persistent", "workers": [1, 3], "slowdown": 2.5}, 4, 3, 0)
    assert np.array_equal(f, np.array([[1, 2.5, 1, 2.5]] * 3))


def test_pareto_tail_mean():
    # Pareto I with scale 1: E = alpha / (alpha - 1).
    f = straggler_factors({"kind": "pareto", "alpha": 3.0}, 8, 20_000, seed=3)
    assert f.mean() == pytest.approx(1.5, rel=0.02)


@pytest.mark.parametrize("spec,field", [
    ({"kind": "gamma"}, "stragglers.kind"),
    ({"kind": "lognormal"}, "stragglers.sigma"),
    ({"kind": "exponential", "mean": -1}, "stragglers.mean"),
    ({"kind": "exponential", "mean": 0.1, "sigma": 1}, "stragglers.sigma"),
    ({"kind": "pareto", "alpha": 0}, "stragglers.alpha"),
    ({"kind": "persistent", "workers": [9], "slowdown": 2}, "stragglers.workers"),
    ({"kind": "persistent", "workers": [0], "slowdown": 0.5}, "stragglers.slowdown"),
])
def test_bad_specs_name_the_field(spec, field):
    with pytest.raises(ValueError, match=field):
        straggler_factors(spec, 4, 2, 0)

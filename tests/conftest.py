from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tiny_scenario() -> dict:
    """A scenario small enough for an end-to-end run in a few seconds."""
    return {
        "name": "tiny",
        "seed": 3,
        "workload": {"model": "mlp", "dataset": "digits", "hidden": [128], "batch_size": 16,
                     "optimizer": {"name": "sgd", "lr": 0.2, "momentum": 0.9}},
        "cluster": {"workers": 4,
                    "topology": {"kind": "star", "bandwidth": "20 Mbit/s", "latency": "10 us"},
                    "compute": {"kind": "measured"},
                    "stragglers": {"kind": "lognormal", "sigma": 0.2}},
        # qsgd's codec times are pinned (as a resolved scenario would), so the throughput
        # comparison below depends on the network model only; none's are measured.
        "compressors": [{"name": "none"},
                        {"name": "qsgd", "levels": 7, "bucket_size": 128,
                         "encode_s": 2e-4, "decode_s": 5e-5}],
        "run": {"iterations": 30, "eval_every": 10, "target_accuracy": 0.5},
    }


@pytest.fixture
def tiny_scenario_dict():
    return tiny_scenario()

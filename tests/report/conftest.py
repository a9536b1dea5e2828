"""Results folders for the report tests: a tiny real run and a tiny two-point sweep.

Both are real engine runs (training + network replay) kept small: fixed compute time (no
measurement), 2 workers' worth of tiny MLP, 20 iterations. Session-scoped: built once.
"""

import copy

import pytest

from simnet import engine
from simnet.scenario import loads
from tests.conftest import tiny_scenario


def small_scenario(sweep: bool) -> dict:
    s = copy.deepcopy(tiny_scenario())
    s["name"] = "tiny-sweep" if sweep else "tiny"
    s["workload"]["hidden"] = [32]
    s["cluster"]["compute"] = {"kind": "fixed", "seconds": 0.004}
    s["compressors"][0].update({"encode_s": 1e-5, "decode_s": 1e-5})
    s["run"] = {"iterations": 20, "eval_every": 5, "target_accuracy": 0.3}
    if sweep:
        s["sweep"] = {"cluster.topology.bandwidth": ["10 Mbit/s", "1 Gbit/s"]}
    return s


@pytest.fixture(scope="session")
def single_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    engine.run(loads(small_scenario(False)), out)
    return out


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    engine.run(loads(small_scenario(True)), out)
    return out

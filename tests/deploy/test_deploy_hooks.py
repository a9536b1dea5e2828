"""The DDP hook averages exactly as the simulator does (2 ranks, gloo on loopback, CPU)."""

import numpy as np
import pytest
import torch

from simnet import compression
from simnet.deploy.launch import run_local
from simnet.scenario import loads
from simnet import seeds as seeding
from simnet.training import setup_workload, train
from simnet.workload.workers import Workers

SCENARIO = {
    "name": "hook", "seed": 3,
    "workload": {"model": "mlp", "dataset": "digits", "hidden": [32], "batch_size": 16,
                 "optimizer": {"name": "sgd", "lr": 0.2, "momentum": 0.9}},
    "cluster": {"workers": 2, "compute": {"kind": "fixed", "seconds": 0.01}},
    "compressors": [{"name": "none"}],
    "run": {"iterations": 3, "eval_every": 3},
}
SPECS = [{"name": "none"}, {"name": "fp16"}, {"name": "topk", "ratio": 0.1},
         {"name": "signsgd"}]
if "qsgd" in compression.names():
    SPECS.append({"name": "qsgd", "levels": 7, "bucket_size": 128})
TRAINED = [{"name": "none"}, {"name": "topk", "ratio": 0.1}]
ROUNDS = 2  # the second round exercises per-rank state (error-feedback memory)


@pytest.fixture(scope="module")
def real():
    tasks = [{"kind": "aggregate", "scenario": SCENARIO, "compressor": s, "rounds": ROUNDS}
             for s in SPECS]
    tasks += [{"kind": "train", "scenario": SCENARIO, "compressor": s, "iterations": 3,
               "eval_every": 0} for s in TRAINED]
    return run_local(tasks, 2, timeout_s=240)


def simulated_means(spec: dict) -> list[torch.Tensor]:
    """The simulator's aggregation (simnet.training.train) of iteration 1's gradients."""
    sc = loads(SCENARIO)
    torch.manual_seed(sc.seed)
    data, model, device = setup_workload(sc)
    workers = Workers(model, data, 2, sc.workload.batch_size, seeding.component(sc.seed, seeding.DATA), torch.device("cpu"))
    grads, _ = workers.gradients()
    params = {k: v for k, v in spec.items() if k != "name"}
    comps = [compression.get(spec["name"], **params) for _ in range(2)]
    gens = seeding.torch_generators(sc.seed, 3, torch.device("cpu"))
    out = []
    for _ in range(ROUNDS):
        payloads = [comps[k].encode(grads[k], generator=gens[k]) for k in range(2)]
        out.append(torch.stack([comps[k].decode(p, workers.numel) for k, p in enumerate(payloads)]).mean(0))
    return out


@pytest.mark.parametrize("index", range(len(SPECS)), ids=[s["name"] for s in SPECS])
def test_hook_mean_equals_simulator_mean(real, index):
    spec = SPECS[index]
    result = real[index]
    expected = simulated_means(spec)
    # fp16 sums in half precision on the wire; the simulator averages decoded values in fp32.
    tol = 2e-3 if spec["name"] == "fp16" else 1e-6
    for rank_means in result["means"]:
        for got, want in zip(rank_means, expected):
            got = torch.tensor(got)
            assert got.shape == want.shape
            assert torch.allclose(got, want, rtol=tol, atol=tol * want.abs().max().item()), spec


def test_hook_ranks_agree(real):
    for result in real[:len(SPECS)]:
        assert result["means"][0] == result["means"][1]


@pytest.mark.parametrize("index", range(len(TRAINED)), ids=[s["name"] for s in TRAINED])
def test_ddp_training_follows_simulated_trace(real, index):
    """Real DDP with the hook reproduces the simulator's losses, iteration by iteration."""
    spec = TRAINED[index]
    result = real[len(SPECS) + index]
    sc = loads({**SCENARIO, "compressors": [spec]})
    trace = train(sc, sc.compressors[0])
    measured = [np.mean([r[i]["loss"] for r in result["ranks"]]) for i in range(3)]
    assert measured == pytest.approx(trace.loss, rel=1e-4)
    payload = [sum(r[i]["payload_bytes"] for r in result["ranks"]) for i in range(3)]
    assert payload == [sum(b) for b in trace.payload_bytes]

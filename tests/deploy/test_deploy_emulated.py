"""Prediction vs measurement on the emulated cluster (root + network namespaces).

Per cluster (2 and 3 ranks at 50 and 100 Mbit/s): calibrate, then the all-gather of real
QSGD payloads (topk until qsgd is registered) and the ring all-reduce of a real fp32
gradient must match the calibrated prediction within 5% (median absolute relative error);
one whole DDP iteration (median of 10, the slowest rank's), compute included, within 10%, for
fp32 and for QSGD (whose pinned compute and codec times are sampled between the timed
iterations, so the VM's CPU speed drift hits prediction and measurement alike).
"""

import os
import statistics

import pytest

from simnet import compression
from simnet.deploy import netns
from simnet.deploy.validate import format_table, validate
from simnet.scenario import loads

pytestmark = pytest.mark.root

OK, WHY = netns.available()
QUANTIZER = ({"name": "qsgd", "levels": 7, "bucket_size": 512} if "qsgd" in compression.names()
             else {"name": "topk", "ratio": 0.1})
CLUSTERS = [(2, 50), (2, 100), (3, 50), (3, 100)]


def scenario(workers: int, mbit: int):
    # ~650k parameters: 2.6 MB of fp32, so link time (0.2-0.6 s) dominates a CPU iteration.
    return loads({
        "name": f"emulated-{workers}x{mbit}", "seed": 0,
        "workload": {"model": "mlp", "dataset": "digits", "hidden": [768, 768], "batch_size": 32,
                     "optimizer": {"name": "sgd", "lr": 0.05}},
        "cluster": {"workers": workers, "compute": {"kind": "measured"},
                    "topology": {"kind": "star", "bandwidth": f"{mbit} Mbit/s", "latency": "0 s"}},
        "compressors": [{"name": "none"}, QUANTIZER],
        "run": {"iterations": 4, "eval_every": 4},
    })


@pytest.fixture(scope="module", params=CLUSTERS, ids=[f"{k}ranks-{m}Mbit" for k, m in CLUSTERS])
def report(request, tmp_path_factory):
    if not OK:
        pytest.skip(f"emulated cluster unavailable: {WHY}")
    k, mbit = request.param
    if k > (os.cpu_count() or 1):
        # DESIGN §7: ranks <= cores, else ranks queue for a core while gloo's sends wait,
        # and the collective measures the CPU: 3 ranks on 2 cores gave -7%..+10% errors.
        pytest.skip(f"{k} ranks on {os.cpu_count()} cores: the CPU, not the link, would be measured")
    rep = validate(scenario(k, mbit), tmp_path_factory.mktemp("val"), iterations=10, repeats=5,
                   force=True, timeout_s=240)
    print(format_table(rep))
    if rep["probe_bps"] < 10 * rep["rate_bps"]:  # DESIGN §7: else the CPU is what we measure
        pytest.skip(f"CPU-bound host (other load?): {'; '.join(rep['warnings'])}")
    return rep


def test_collectives_match_prediction(report):
    errors = [abs(r["rel_error"]) for r in report["rows"] if r["what"] == "collective"]
    assert {r["collective"] for r in report["rows"]} == {"allgather", "ring-allreduce"}
    assert statistics.median(errors) <= 0.05, format_table(report)


@pytest.mark.parametrize("compressor", ["none", "quantized"])
def test_whole_iteration_matches_prediction(report, compressor):
    rows = [r for r in report["rows"] if r["what"] == "iteration"]
    row = rows[0] if compressor == "none" else rows[1]
    assert abs(row["rel_error"]) <= 0.10, format_table(report)
    assert set(row["predicted_parts_s"]) == {"compute", "encode", "communication", "decode",
                                             "slowest_rank"}
    assert row["predicted_parts_s"]["slowest_rank"] >= 0  # a max over ranks is >= their mean

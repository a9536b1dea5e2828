"""Engine phases: replay against closed forms, overlap, calibration, backup workers,
resumable sweeps (process pool and Dask)."""

import json
import subprocess
import sys
import time

import pytest

from simnet import engine
from simnet.replay import replay
from simnet.scenario import loads
from simnet.training import Trace, train
from tests.conftest import tiny_scenario

MB = 1_000_000


def _scenario(**cluster):
    data = {"cluster": {"workers": 4, "compute": {"kind": "fixed", "seconds": 0.01},
                        "topology": {"kind": "star", "bandwidth": "1 Gbit/s", "latency": "10 us",
                                     "servers": 0}}}
    data["cluster"].update(cluster)
    return data


def _trace(nbytes, iterations=3, workers=4):
    return Trace([[nbytes] * workers for _ in range(iterations)], [0] * iterations,
                 [1.0] * iterations, {}, numel=nbytes // 4)


def test_replay_is_compute_plus_closed_form_collective():
    sc = loads(_scenario())
    timings, _, _ = replay(sc, _trace(4 * MB), "ring-allreduce", encode_s=0.0, decode_s=0.0)
    link = 1.25e8
    alpha = 2 * 10e-6  # worker -> switch -> worker
    closed = 0.01 + 2 * 3 * alpha + 2 * 3 / 4 * 4 * MB / link
    for t in timings:
        assert t.iteration_time_s == pytest.approx(closed, rel=1e-9)
        assert t.communication_s == pytest.approx(closed - 0.01, rel=1e-9)


def test_calibration_scales_bandwidth_and_adds_overhead():
    plain = loads(_scenario())
    calibrated = loads({**_scenario(), "calibration": {"bandwidth_factor": 0.5,
                                                       "overhead_s": {"allgather": 0.003}}})
    t0 = replay(plain, _trace(MB), "allgather", 0.0, 0.0)[0][0]
    t1 = replay(calibrated, _trace(MB), "allgather", 0.0, 0.0)[0][0]
    comm0 = t0.communication_s
    latency = 2 * 10e-6
    # Bandwidth halved: the transfer part doubles; latency unchanged; overhead added once.
    assert t1.communication_s == pytest.approx(2 * (comm0 - latency) + latency + 0.003, rel=1e-9)


def test_overlap_hides_communication_behind_backward():
    base = _scenario()
    trace = _trace(8 * MB)
    # Two buckets of equal size: the first is sent while the second half of backward runs.
    trace.bucket_numel = [MB, MB]
    trace.bucket_bytes = [[[4 * MB, 4 * MB]] * 4 for _ in range(3)]
    off = replay(loads(base), _trace(8 * MB), "ring-allreduce", 0.0, 0.0)[0][0]
    on = replay(loads({**base, "communication": {"overlap": True}}), trace, "ring-allreduce", 0.0, 0.0)[0][0]
    assert on.iteration_time_s < off.iteration_time_s
    comm_one_bucket = (off.iteration_time_s - 0.01) / 2  # half the bytes: ~half the time
    assert on.iteration_time_s >= 0.01 + comm_one_bucket - 1e-9  # last bucket after backward
    parts = on.compute_s + on.encode_s + on.communication_s + on.wait_s
    assert parts == pytest.approx(on.iteration_time_s, rel=1e-12)


def _losses(data):
    sc = loads(data)
    return train(sc, sc.compressors[0]).loss


def test_backup_workers_change_trajectory_only_with_stragglers():
    base = tiny_scenario()
    base["cluster"]["compute"] = {"kind": "fixed", "seconds": 0.01}
    base["compressors"] = [{"name": "none", "encode_s": 0.0, "decode_s": 0.0}]
    base["run"] = {"iterations": 8, "eval_every": 4}
    calm = json.loads(json.dumps(base))
    calm["cluster"]["stragglers"] = {"kind": "none"}
    sync = _losses(calm)
    calm["communication"] = {"backup_workers": 1}
    assert _losses(calm) == sync  # equal arrivals: every gradient is aggregated
    stormy = json.loads(json.dumps(calm))
    stormy["cluster"]["stragglers"] = {"kind": "exponential", "mean": 1.0}
    assert _losses(stormy) != sync


def test_coupled_run_equals_replayed_trace_for_synchronous_sgd(tmp_path):
    """Backup workers without stragglers aggregate everyone: the coupled (timing-aware)
    training must reproduce the replayed synchronous run exactly, timing included."""
    base = tiny_scenario()
    base["cluster"]["compute"] = {"kind": "fixed", "seconds": 0.01}
    base["cluster"]["stragglers"] = {"kind": "none"}
    base["compressors"] = [{"name": "qsgd", "levels": 7, "bucket_size": 128,
                            "encode_s": 2e-4, "decode_s": 5e-5}]
    base["run"] = {"iterations": 6, "eval_every": 3}
    replayed = engine.run(loads(base), tmp_path / "replayed").summary
    base["communication"] = {"backup_workers": 1}
    coupled = engine.run(loads(base), tmp_path / "coupled").summary
    assert replayed == coupled
    assert (tmp_path / "replayed" / "results.jsonl").read_bytes() == \
        (tmp_path / "coupled" / "results.jsonl").read_bytes()


def _sweep_scenario():
    data = tiny_scenario()
    data["cluster"]["compute"] = {"kind": "fixed", "seconds": 0.002}
    data["compressors"] = [{"name": "none", "encode_s": 1e-5, "decode_s": 1e-5},
                           {"name": "qsgd", "levels": 7, "bucket_size": 128,
                            "encode_s": 2e-4, "decode_s": 5e-5}]
    data["run"] = {"iterations": 15, "eval_every": 5, "target_accuracy": 0.5}
    data["sweep"] = {"cluster.topology.bandwidth": ["10 Mbit/s", "100 Mbit/s", "1 Gbit/s", "10 Gbit/s"]}
    return data


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    engine.run(loads(_sweep_scenario()), out)
    return out


def _same_results(a, b):
    for name in ("results.jsonl", "summary.json", "scenario.resolved.yaml"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_sweep_variants_and_speedup_axis(uninterrupted):
    summary = json.loads((uninterrupted / "summary.json").read_text())
    assert len(summary) == 8
    speedups = [r["throughput_speedup_vs_none"] for r in summary if r["compressor"].startswith("qsgd")]
    assert speedups[0] > speedups[-1]  # compression pays most on the slowest link


def test_sweep_killed_midway_resumes_to_identical_results(uninterrupted, tmp_path):
    scenario = tmp_path / "sweep.yaml"
    scenario.write_text(json.dumps(_sweep_scenario()))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "simnet.cli", "run", str(scenario), "--out",
                             str(out), "--quiet"])
    variants = out / ".simnet" / "variants"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if variants.exists() and any(variants.glob("*.json")):
            proc.kill()
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    finished_before = len(list(variants.glob("*.json"))) if variants.exists() else 0
    assert 1 <= finished_before, "the sweep ended before it could be interrupted"
    engine.run(loads(_sweep_scenario()), out)
    _same_results(uninterrupted, out)


def test_sweep_on_process_pool_matches(uninterrupted, tmp_path):
    engine.run(loads(_sweep_scenario()), tmp_path, jobs=2)
    _same_results(uninterrupted, tmp_path)


def test_sweep_on_dask_matches(uninterrupted, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        engine.run(loads(_sweep_scenario()), tmp_path, scheduler=cluster.scheduler_address)
    _same_results(uninterrupted, tmp_path)


def test_flops_compute_models_codec_time_on_the_gpu():
    from simnet.codec_model import modelled_codec_s
    from simnet.workload import gpus

    data = tiny_scenario()
    data["cluster"]["compute"] = {"kind": "flops", "gpu": "A100", "efficiency": 0.5}
    data["compressors"] = [{"name": "none"}, {"name": "qsgd", "levels": 7}]
    pinned = engine.pin_measurements(loads(data))
    numel = 64 * 128 + 128 + 128 * 10 + 10
    one_pass = 4 * numel / gpus.get("A100").memory_bandwidth
    none, qsgd = pinned.compressors
    assert (none.encode_s, none.decode_s) == (0.0, 0.0)
    assert qsgd.encode_s == pytest.approx(6 * one_pass) and qsgd.decode_s == pytest.approx(3 * one_pass)
    assert modelled_codec_s("fp16", numel, 1.0) == (6.0 * numel, 6.0 * numel)
    assert pinned.cluster.compute.seconds > 0

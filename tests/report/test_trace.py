"""trace.json follows the Chrome trace-event format (what Perfetto opens): every event has
ph, ts, pid, tid; complete events have non-negative durations; workers and links are tracks."""

import json

from simnet.report.chrome_trace import trace_events, validate_events


def test_trace_of_a_run_is_valid_trace_event_json(sweep_dir):
    trace = json.loads((sweep_dir / "trace.json").read_text())
    events = trace["traceEvents"]
    assert validate_events(trace) == []
    for ev in events:  # the format's own requirements, spelled out
        assert {"ph", "ts", "pid", "tid"} <= set(ev)
        if ev["ph"] == "X":
            assert ev["dur"] >= 0 and ev["ts"] >= 0
    processes = {e["args"]["name"] for e in events if e["name"] == "process_name"}
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert processes == {f"{r['variant']} / {r['compressor']}" for r in summary}
    threads = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert {f"worker {k}" for k in range(4)} <= threads
    assert any(t.startswith("link w0->") for t in threads)
    names = {e["name"] for e in events if e["ph"] == "X"}
    assert {"compute", "encode", "communicate", "send"} <= names


def test_slices_on_one_track_do_not_overlap(single_dir):
    events = json.loads((single_dir / "trace.json").read_text())["traceEvents"]
    tracks: dict = {}
    for e in events:
        if e["ph"] == "X":
            tracks.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    for spans in tracks.values():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end - 1e-3  # µs, rounded to the ns


def test_link_timings_from_the_timeline_become_link_tracks():
    timeline = {"base / none": [
        {"worker": 0, "compute": [0, 1e-3], "encode": [1e-3, 1e-3], "communicate": [1e-3, 3e-3],
         "decode": [3e-3, 3e-3], "wait": [3e-3, 4e-3],
         "links": [{"link": "w0->sw0", "start": 1e-3, "end": 2e-3, "bytes": 1000}]}]}
    trace = trace_events(timeline)
    assert validate_events(trace) == []
    sends = [e for e in trace["traceEvents"] if e["name"] == "send"]
    assert len(sends) == 1 and sends[0]["args"] == {"bytes": 1000}
    assert sends[0]["ts"] == 1000.0 and sends[0]["dur"] == 1000.0  # microseconds
    assert [e["name"] for e in trace["traceEvents"] if e["ph"] == "X"].count("encode") == 0  # empty


def test_validator_rejects_broken_events():
    assert validate_events({"traceEvents": [{"ph": "X", "ts": 0, "pid": 1, "name": "a", "dur": 1}]})
    assert validate_events({"traceEvents": [{"ph": "X", "ts": 0, "pid": 1, "tid": 1, "name": "a",
                                             "dur": -1}]})
    assert validate_events({"traceEvents": [{"ph": "Q", "ts": 0, "pid": 1, "tid": 1, "name": "a"}]})
    assert validate_events({"events": []})

"""Chrome trace-event export (opens in Perfetto / chrome://tracing) of one iteration per
(variant, compressor), from timeline.json.

Layout: each (variant, compressor) is a process; each worker a thread (track) with complete
("X") slices compute, encode, communicate, decode, wait; each link a thread after the
workers with "send" slices. Timestamps and durations are microseconds of simulated time.

Link tracks come from a timeline entry's optional "links" list
([{"link": "w0->sw0", "start": s, "end": s, "bytes": n}]) when the engine writes one;
otherwise each worker's access link is derived from its communicate phase and the slice
says so in its args.
"""

from __future__ import annotations

__all__ = ["trace_events", "PHASES", "validate_events"]

PHASES = ("compute", "encode", "communicate", "decode", "wait")
LINK_TID0 = 1000  # link tracks sort after worker tracks


def _meta(pid: int, tid: int, kind: str, name: str) -> list[dict]:
    return [{"ph": "M", "name": kind, "pid": pid, "tid": tid, "ts": 0, "args": {"name": name}},
            {"ph": "M", "name": kind.replace("name", "sort_index"), "pid": pid, "tid": tid, "ts": 0,
             "args": {"sort_index": tid if kind == "thread_name" else pid}}]


def _slice(name: str, pid: int, tid: int, start: float, end: float, args=None) -> dict:
    ts = round(start * 1e6, 3)  # µs to the ns; dur from the rounded end so slices abut
    ev = {"ph": "X", "name": name, "cat": name, "pid": pid, "tid": tid,
          "ts": ts, "dur": max(0.0, round(round(end * 1e6, 3) - ts, 3))}
    if args:
        ev["args"] = args
    return ev


def _links(workers: list[dict], access: dict) -> list[tuple[str, float, float, dict]]:
    """(link name, start s, end s, args) per link slice."""
    out = []
    for w in workers:
        for item in w.get("links") or []:
            out.append((item["link"], item["start"], item["end"], {"bytes": item.get("bytes")}))
    if out:
        return out
    for w in workers:  # derived: the worker's own link is busy while it communicates
        start, end = w["communicate"]
        name = access.get(w["worker"], f"w{w['worker']} uplink")
        out.append((name, start, end, {"derived": "worker's communicate phase; per-link flow "
                                                  "timings are not in timeline.json"}))
    return out


def trace_events(timelines: dict[str, list[dict]], access_links: dict | None = None) -> dict:
    """The trace-event JSON object for timeline.json's content.

    access_links: worker rank -> 'u->v' name of its first-hop link (for derived link tracks).
    """
    events: list[dict] = []
    access = access_links or {}
    for pid, (label, workers) in enumerate(timelines.items(), start=1):
        events += _meta(pid, 0, "process_name", label)
        for w in workers:
            tid = int(w["worker"]) + 1
            events += _meta(pid, tid, "thread_name", f"worker {w['worker']}")
            for phase in PHASES:
                start, end = w.get(phase, (0.0, 0.0))
                if end > start:
                    events.append(_slice(phase, pid, tid, start, end))
        tids: dict[str, int] = {}
        for name, start, end, args in _links(workers, access):
            if name not in tids:
                tids[name] = LINK_TID0 + len(tids)
                events += _meta(pid, tids[name], "thread_name", f"link {name}")
            if end > start:
                events.append(_slice("send", pid, tids[name], start, end, args))
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"source": "simnet timeline.json", "time": "simulated"}}


def validate_events(trace: dict) -> list[str]:
    """Problems with a trace-event object (empty list: valid). Checks what Perfetto needs:
    every event has ph, ts, pid, tid; X events have a non-negative dur; ts are finite."""
    problems = []
    events = trace.get("traceEvents") if isinstance(trace, dict) else trace
    if not isinstance(events, list):
        return ["traceEvents: not a list"]
    for i, ev in enumerate(events):
        missing = [k for k in ("ph", "ts", "pid", "tid", "name") if k not in ev]
        if missing:
            problems.append(f"event {i}: missing {missing}")
            continue
        if not isinstance(ev["ts"], (int, float)) or ev["ts"] != ev["ts"] or ev["ts"] < 0:
            problems.append(f"event {i}: bad ts {ev['ts']!r}")
        if ev["ph"] == "X" and not (isinstance(ev.get("dur"), (int, float)) and ev["dur"] >= 0):
            problems.append(f"event {i}: X event needs dur >= 0, got {ev.get('dur')!r}")
        if ev["ph"] not in {"X", "B", "E", "M", "i", "I", "C", "b", "e", "n", "s", "t", "f"}:
            problems.append(f"event {i}: unknown phase {ev['ph']!r}")
    return problems

"""Chrome trace-event export of one iteration per (variant, compressor); opens in Perfetto.

Each (variant, compressor) is a process; each worker a thread; compute, encode,
communicate, decode and wait are complete ("X") events with microsecond timestamps.
"""

from __future__ import annotations

PHASES = ("compute", "encode", "communicate", "decode", "wait")


def trace_events(timelines: dict[str, list[dict]]) -> dict:
    """Build the trace-event JSON object from timeline.json's content."""
    events = []
    for pid, (label, workers) in enumerate(timelines.items(), start=1):
        events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "ts": 0,
                       "args": {"name": label}})
        for w in workers:
            tid = int(w["worker"]) + 1
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "ts": 0,
                           "args": {"name": f"worker {w['worker']}"}})
            for phase in PHASES:
                start, end = w[phase]
                if end - start <= 0:
                    continue
                events.append({"ph": "X", "name": phase, "cat": phase, "pid": pid, "tid": tid,
                               "ts": start * 1e6, "dur": (end - start) * 1e6})
    return {"traceEvents": events, "displayTimeUnit": "ms"}

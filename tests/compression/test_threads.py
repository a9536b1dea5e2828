"""The codec's thread count: SIMNET_THREADS (set by the real-run launcher) or min(4, cores)."""

import os

from simnet.compression import threads


def test_threads_follow_the_environment(monkeypatch):
    monkeypatch.setenv("SIMNET_THREADS", "3")
    assert threads._threads() == 3
    for bad in ("0", "-2", "two", ""):
        monkeypatch.setenv("SIMNET_THREADS", bad)
        assert threads._threads() == max(1, min(4, os.cpu_count() or 1))


def test_split_covers_the_range_once():
    for total, parts in ((10, 3), (2, 5), (0, 2), (7, 1)):
        ranges = threads.split(total, parts)
        assert [i for lo, hi in ranges for i in range(lo, hi)] == list(range(total))
        assert len(ranges) == max(1, min(parts, total))

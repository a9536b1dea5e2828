"""The codec's thread count: SIMNET_THREADS (set by the real-run launcher) or min(4, cores)."""

import os

from simnet.compression import jit, threads


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


def test_bounds_list_each_range_start_and_the_end():
    assert threads.bounds([(0, 3), (3, 7), (7, 8)]).tolist() == [0, 3, 7, 8]
    assert threads.bounds([(5, 9)]).tolist() == [5, 9]


def test_team_only_for_several_ranges_with_the_kernels_on(monkeypatch):
    """One range never launches a team; nor do switched-off teams or kernels. Where numba has
    a thread-safe layer (OpenMP or TBB), two ranges get a team of two, sized per call; the
    spin count set for its start is not left in the environment."""
    assert not threads.team_ready(1)
    monkeypatch.setattr(threads, "TEAM", False)
    assert not threads.team_ready(2)
    monkeypatch.setattr(threads, "TEAM", True)
    if not jit.enabled():
        assert not threads.team_ready(2)
        return
    spins = os.environ.get("GOMP_SPINCOUNT")
    if threads.team_ready(2):
        assert jit.numba.threading_layer() in ("omp", "tbb")
        assert jit.numba.get_num_threads() == min(2, jit.numba.config.NUMBA_NUM_THREADS)
    assert os.environ.get("GOMP_SPINCOUNT") == spins

"""Per-thread scratch arrays: reused by name on one thread, never shared between threads, and
codecs that use them give the same bytes when called from several threads at once."""

import threading

import numpy as np
import pytest
import torch

from simnet import compression
from simnet.compression import jit, scratch


def test_a_name_is_reused_on_its_thread_and_grown_when_too_small():
    a = scratch.array("test.a", 1000, np.uint16)
    assert a.shape == (1000,) and a.dtype == np.uint16
    a[:] = 7
    again = scratch.array("test.a", 500, np.uint16)
    assert np.shares_memory(a, again) and (again == 7).all()  # the same pages, not fresh
    other = scratch.array("test.b", 1000, np.uint16)
    assert not np.shares_memory(a, other)
    wider = scratch.array("test.a", 4000, np.float64)  # larger than kept: a new buffer
    assert wider.shape == (4000,) and wider.dtype == np.float64
    wider[:] = 1.5
    assert (wider == 1.5).all()


def test_threads_never_share_a_buffer():
    mine = scratch.array("test.c", 256, np.uint8)
    theirs = []
    t = threading.Thread(target=lambda: theirs.append(scratch.array("test.c", 256, np.uint8)))
    t.start()
    t.join()
    assert not np.shares_memory(mine, theirs[0])


@pytest.mark.skipif(not jit.enabled(), reason="scratch serves the compiled encoders")
@pytest.mark.parametrize("encoding", ["fixed", "elias", "entropy", "auto"])
def test_concurrent_encodes_give_the_serial_bytes(encoding):
    """Two threads encoding at once share the codec pools' workers; each payload must still
    be what a lone call gives (a scratch buffer shared between callers would mix them). n is
    past the sizes at which the encoders go parallel and code pairs."""
    n = (1 << 19) + 1001
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    xs = [torch.randn(n, generator=g) for g in gens]
    for method in ("qsgd", "qsgdinf"):
        c = compression.get(method, bits=4, bucket_size=512, encoding=encoding)
        expect = [c.encode(x, torch.Generator().manual_seed(9)) for x in xs]
        got = [[], []]
        start = threading.Barrier(2)

        def work(i):
            start.wait()
            for _ in range(6):
                got[i].append(c.encode(xs[i], torch.Generator().manual_seed(9)))

        threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in (0, 1):
            assert all(p == expect[i] for p in got[i]), (method, i)

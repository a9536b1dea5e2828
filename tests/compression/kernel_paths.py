"""Run test code on both codec paths: the compiled kernels and the vectorised fallback
(`jit.ENABLED` on and off), for tests that hold one to the other."""

from __future__ import annotations

import os
import subprocess
import sys

from simnet.compression import jit


def on_path(kernels: bool, fn):
    """fn() with the compiled kernels on (True) or off (False); the switch is restored even
    if fn raises."""
    saved = jit.ENABLED
    jit.ENABLED = kernels
    try:
        return fn()
    finally:
        jit.ENABLED = saved


def on_both(fn):
    """(fn() with the kernels, fn() with the vectorised path)."""
    return on_path(True, fn), on_path(False, fn)


def value_or_error(fn):
    """fn()'s result, or the ValueError it raised; any other exception propagates."""
    try:
        return fn()
    except ValueError as e:
        return e


def payload_without_vector_steps(tmp_path, method: str, encoding: str, n: int) -> bytes:
    """The payload of a fresh process with SIMNET_VECTOR=0 (as on a host without AVX-512),
    its kernels compiled afresh into a cache of its own (tmp_path): `method` with bits=4,
    d=512 and `encoding`, of randn(n) from seed 3, encoded with seed 7. It checks there that
    every vector step is off."""
    script = ("import sys, torch\n"
              "from simnet import compression\n"
              "from simnet.compression import elias_vectors, lane_vectors, pair_vectors\n"
              "assert not (elias_vectors.FAST or lane_vectors.FAST or pair_vectors.FAST)\n"
              f"x = torch.randn({n}, generator=torch.Generator().manual_seed(3))\n"
              f"c = compression.get({method!r}, bits=4, bucket_size=512, "
              f"encoding={encoding!r})\n"
              "sys.stdout.buffer.write(c.encode(x, torch.Generator().manual_seed(7)))\n")
    env = {**os.environ, "SIMNET_VECTOR": "0", "NUMBA_CACHE_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          check=True, timeout=600).stdout

"""Compiled CPU kernels (numba) for the codecs, with the vectorised numpy/torch code as fallback.

The variable-length formats (`elias`, `entropy`) are serial at heart: vectorised numpy walks
them in thousands of small steps, each a pass over a lane array, which costs tens of times a
memory pass. numba compiles the same loops to machine code. Every kernel produces exactly the
bytes (and raises exactly the ValueErrors) of the vectorised path, which stays as the fallback
and as the oracle the tests compare the kernels against.

`enabled()` is read at call time, so tests can switch it off with
`monkeypatch.setattr(jit, "ENABLED", False)`. SIMNET_JIT=0 in the environment, or numba missing,
switches it off for a whole process.
"""

from __future__ import annotations

import os

try:
    import numba
except ImportError:  # a Python numba has no wheel for yet: the vectorised path runs
    numba = None

__all__ = ["ENABLED", "enabled", "kernel", "inline", "parallel_kernel", "prange"]

ENABLED = numba is not None and os.environ.get("SIMNET_JIT", "1") != "0"


def enabled() -> bool:
    """Whether the compiled kernels run (module flag, read at call time)."""
    return ENABLED


def kernel(fn):
    """Compile `fn` lazily on first call: no-Python mode, GIL released (so a thread pool runs
    kernels in parallel), machine code cached on disk beside the source. Without numba the
    function is returned as is; callers check `enabled()` first and never call it then.

    numba's cache is keyed on the kernel's own source file only: after editing an `inline`
    helper in another module, delete the cached `__pycache__/*.nbi` and `*.nbc` files (an
    install or a fresh clone starts without them)."""
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True)(fn)


def parallel_kernel(fn):
    """`kernel` whose `prange` loops run on numba's threading layer: a few ranges of one
    payload's work, one a thread, with no GIL taken between them (`threads.team_ready`
    says whether to launch one). Without numba the function is returned as is, its
    `prange` being `range`."""
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True, parallel=True)(fn)


prange = range if numba is None else numba.prange


def inline(fn):
    """A helper of kernels, inlined into each caller at numba's IR level (a per-coordinate
    helper compiled as a call stops LLVM from optimising the caller's loop: ~4x slower)."""
    if numba is None:
        return fn
    return numba.njit(inline="always")(fn)

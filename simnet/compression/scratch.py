"""Per-thread scratch arrays of the codecs, reused from call to call.

A fresh array of a few hundred KiB or more is mapped anew by the allocator unless it happens
to recycle freed memory, and then its first write costs a page fault per 4 KiB: about 2 us
each on a virtual machine, so the temporaries of one 1 M-coordinate encode (keys, code
streams, the payload being assembled: ~460 pages) can add 1 ms to 1.6 ms of work, or not,
depending on what the process allocated before. Temporaries that never outlive one call are
therefore taken from here: each thread keeps one buffer per name, grown when too small, so
the pages stay mapped.

Rules: an array from here is taken by the thread that makes the call (worker threads only
write into what they are given: two callers never share one), is never returned to the
caller or kept past the call, and each use site has a name of its own.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["array"]

_local = threading.local()


def array(name: str, size: int, dtype) -> np.ndarray:
    """An uninitialised array of `size` elements of `dtype`: this thread's scratch `name`,
    valid until this thread next asks for `name`."""
    kept = _local.__dict__.setdefault("buffers", {})
    dtype = np.dtype(dtype)
    nbytes = size * dtype.itemsize
    buf = kept.get(name)
    if buf is None or buf.size < nbytes:
        # (a little headroom: sizes vary from call to call with the data)
        buf = kept[name] = np.empty(nbytes + nbytes // 8 + 64, np.uint8)
    return buf[:nbytes].view(dtype)

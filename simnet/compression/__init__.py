"""Gradient compressors: real encoders whose byte counts the simulator charges.

    c = compression.get("qsgd", levels=16, bucket_size=512, encoding="elias")
    payload = c.encode(x, generator=g)
    y = c.decode(payload, numel=x.numel())
"""

from .aggregate import average  # noqa: F401
from .base import Compressor, get, names, register  # noqa: F401

# Importing a method's module registers it.
from . import none  # noqa: F401,E402
from . import fp16, onebit, signsgd, terngrad, topk, powersgd  # noqa: F401,E402
from .error_feedback import ErrorFeedback  # noqa: F401,E402
from . import qsgd, qsgdinf, nuqsgd  # noqa: F401,E402

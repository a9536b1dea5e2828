"""Run test code on both codec paths: the compiled kernels and the vectorised fallback
(`jit.ENABLED` on and off), for tests that hold one to the other."""

from __future__ import annotations

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

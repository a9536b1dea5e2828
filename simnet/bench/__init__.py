"""Benchmarks: `python -m simnet.bench <command> [options]` (speed goals live here, not in tests)."""

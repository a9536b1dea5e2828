"""Benchmarks: `python -m simnet.bench <command> [options]`.

Speed and memory goals live here, never in timed tests.
"""

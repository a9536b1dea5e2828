"""`python -m simnet.bench <command> [options]`: dispatch to a benchmark by name.

Add a benchmark with one line in COMMANDS: "name": "module:function", where function takes
the remaining argv and returns an exit code. Modules are imported only when chosen (the
network benchmark must not pay for importing torch).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "compression": "simnet.bench.compression:main",
    "network": "simnet.bench.network:main",
    "workers": "simnet.bench.workers:main",
    "sweep": "simnet.bench.sweep:main",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(f"usage: python -m simnet.bench {{{','.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module, func = COMMANDS[argv[0]].split(":")
    return getattr(importlib.import_module(module), func)(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())

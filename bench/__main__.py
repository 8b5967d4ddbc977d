"""`python -m bench`: run every benchmark and update docs/benchmarks.md (each its own section)."""

from __future__ import annotations

import importlib
import sys

BENCHES = ("engine", "write", "latency", "report", "board", "decode", "restart", "storm", "cardinality", "drain")


def main() -> int:
    only = sys.argv[1:] or list(BENCHES)
    failed = 0
    for name in only:
        mod = importlib.import_module(f"bench.{name}")
        print(f"== bench.{name}", flush=True)
        rc = mod.main(["--update", "docs/benchmarks.md"])
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Run every benchmark module ``bench/bench_*.py`` (its ``main()``), one after another."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    wanted = set(argv)
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    print(f"{'benchmark':<28} result")
    for name in names:
        if wanted and name not in wanted and name.removeprefix("bench_") not in wanted:
            continue
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

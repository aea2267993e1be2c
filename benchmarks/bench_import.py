"""How long ``import merkit`` and ``import merkit.api`` take in a fresh interpreter (the CLI's start-up and a
notebook's first cell), for this checkout and, optionally, another source tree to compare with.

    python benchmarks/bench_import.py [--other PATH/TO/OTHER/src] [--repeat 7]

Each figure is the median over ``--repeat`` cold subprocesses of wall and CPU (user + sys) seconds; the CPU time
depends less on the machine's load. Prints the date, the CPU count and the load average with the figures.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def cold_import(module: str, src: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -c "import <module>"`` with ``src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    before = os.times()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], env=env, check=True)
    wall = time.perf_counter() - start
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, help="another checkout's src folder, timed the same way")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"{datetime.datetime.now():%Y-%m-%d %H:%M}; {os.cpu_count()} CPUs; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; Python {sys.version.split()[0]}")
    trees = [("this checkout", SRC)] + ([("other", args.other)] if args.other else [])
    for module in ("merkit", "merkit.api"):
        for name, src in trees:
            cold_import(module, src)  # warm the file cache
            runs = [cold_import(module, src) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(f"import {module:<11} {name:<14} wall {wall:.2f} s  cpu {cpu:.2f} s  (median of {args.repeat})")


if __name__ == "__main__":
    main()

"""Wall time of the test suite in one process and with the README's two pytest-xdist workers, one after the other.

    python benchmarks/bench_suite.py [--workers 2] [PYTEST ARGS, e.g. tests/test_imports.py]

Runs ``python -m pytest -q -p no:xdist`` and ``python -m pytest -q -n WORKERS --dist loadfile`` (the README's
test command) on the same tests, and prints the date, the CPU count, the load average, each run's wall and CPU
(user + sys of the children) seconds and pytest's last line, and the ratio of the walls. Time it alone: a second job
on a 2-core machine halves the figures.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time


def timed(args: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of ``python -m pytest ARGS``, and the last line it printed."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    lines = done.stdout.strip().splitlines() or ["(no output)"]
    if done.returncode != 0:
        raise SystemExit(f"pytest {' '.join(args)} failed (exit {done.returncode}): {lines[-1]}")
    return wall, cpu, lines[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args, tests = parser.parse_known_args()
    print(f"{datetime.datetime.now():%Y-%m-%d %H:%M}; {os.cpu_count()} CPUs; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    walls = []
    for label, options in (("one process", ["-p", "no:xdist"]),
                           (f"{args.workers} workers", ["-n", str(args.workers), "--dist", "loadfile"])):
        wall, cpu, last = timed(["-q", *options, *tests])
        walls.append(wall)
        print(f"{label}: wall {wall:.1f} s, CPU {cpu:.1f} s; {last}")
    one, many = walls
    print(f"ratio (one process / {args.workers} workers): {one / many:.2f}")


if __name__ == "__main__":
    main()

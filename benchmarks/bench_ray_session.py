"""Time what a local Ray instance costs a ``--workers N`` run, apart from the training: starting it, the first
tasks (worker processes start and import merkit's runner), and stopping it with every process reaped.

    python benchmarks/bench_ray_session.py [--workers 2] [--repeats 3]

Each repeat starts a fresh instance through :func:`merkit.cluster.ray_session`, runs ``N`` tasks that import
``merkit.training.runner`` (what a fold unit imports), then ``N`` more (warm workers), and leaves the block, which
shuts Ray down and reaps its processes. It prints the seconds of each phase. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date

from merkit.cluster import ray_session, run_tasks


def _import_runner(i: int) -> int:
    import merkit.training.runner  # noqa: F401  (the import a fold unit pays on a fresh worker)

    return i


def _tasks(n: int) -> None:
    failures = run_tasks(_import_runner, [(i,) for i in range(n)], [f"task {i}" for i in range(n)],
                         lambda i, result, node: None)
    if failures:
        raise RuntimeError(f"tasks failed: {failures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ray

    print(f"{date.today()}, machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Ray {ray.__version__}; {args.workers} workers")
    print("repeat | start (s) | first tasks (s) | warm tasks (s) | stop and reap (s) | total (s)")
    for repeat in range(args.repeats):
        marks = [time.perf_counter()]
        with ray_session(args.workers):
            marks.append(time.perf_counter())
            _tasks(args.workers)
            marks.append(time.perf_counter())
            _tasks(args.workers)
            marks.append(time.perf_counter())
        marks.append(time.perf_counter())
        phases = [b - a for a, b in zip(marks, marks[1:])]
        print(f"{repeat} | " + " | ".join(f"{p:.2f}" for p in phases) + f" | {marks[-1] - marks[0]:.2f}")


if __name__ == "__main__":
    main()

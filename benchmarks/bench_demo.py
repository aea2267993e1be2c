"""Time `merkit demo` cold (empty cache and run folder) and warm (everything cached), as README command 1 runs it.

    python benchmarks/bench_demo.py

Prints the seconds of each step (dataset generation; LOSO, which includes building the model inputs through
the inputs stage) and the demo's UF1 and per-class F1.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from merkit.demo import run_demo


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for label in ("cold", "warm"):
            start = time.perf_counter()
            result = run_demo(Path(tmp) / "runs", Path(tmp) / "cache", progress=False, log=lambda _line: None)
            wall = time.perf_counter() - start
            run = result.runs["ststnet"]
            steps = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items() if k != "total")
            f1 = ", ".join(f"{c} {r.f1:.3f}" for c, r in result.per_class["ststnet"].iterrows())
            print(f"{label}: {wall:.1f} s wall ({steps}); UF1 {run.metrics['summary']['full']['uf1']['mean']:.4f}; "
                  f"F1 {f1}")


if __name__ == "__main__":
    main()

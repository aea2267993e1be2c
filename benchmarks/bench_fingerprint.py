"""The cost of the content fingerprint (:meth:`merkit.features.FeatureSet.fingerprint`, hashed once per evaluate
and train) against the run it protects: it must stay under 10 % of one LOSO seed.

    python benchmarks/bench_fingerprint.py

Prints, with the date, the CPU count and the load average (the machine may be shared):

* the fingerprint of demo-sized inputs (60 samples of STSTNet's (3, 28, 28) flow, as ``merkit demo`` builds) and
  one LOSO seed of the demo's STSTNet on them (5 subjects, 60 epochs, the demo's config), which it is compared to;
* the fingerprint of the real MEGC2019 composite (``../shared/data/megc2019-composite``, read with
  :func:`merkit.inputs.read_composite`; skipped when absent), beside the time of reading it;
* the hashing throughput on a 256 MiB tensor, for raw-path inputs far larger than the composite's.

Each fingerprint is the median of 5 calls.
"""

from __future__ import annotations

import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from merkit.datasets.table import new_sample_table
from merkit.demo import demo_config
from merkit.features import FeatureSet

COMPOSITE = Path(__file__).resolve().parents[2] / "shared" / "data" / "megc2019-composite"


def median_seconds(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def demo_sized(subjects: int = 5, per_class: int = 4) -> FeatureSet:
    """Random (N, 3, 28, 28) flow images with the demo's sample count (5 subjects x 3 classes x 4 clips)."""
    rng = np.random.default_rng(0)
    rows = [{"dataset": "synthetic", "subject": f"sub{s + 1:02d}", "sample": f"c{label}_{k}",
             "emotion": ("negative", "positive", "surprise")[label], "label": label}
            for s in range(subjects) for label in range(3) for k in range(per_class)]
    flow = torch.from_numpy(rng.random((len(rows), 3, 28, 28), dtype=np.float32))
    return FeatureSet(new_sample_table(rows), {"flow": flow}, ("negative", "positive", "surprise"))


def main() -> None:
    from merkit.training.runner import run_loso

    print(f"{datetime.datetime.now():%Y-%m-%d %H:%M}; {os.cpu_count()} CPUs (nproc); load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads; Python {sys.version.split()[0]}")
    data = demo_sized()
    fingerprint = median_seconds(data.fingerprint)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_loso(demo_config("ststnet").resolve(), data, Path(tmp) / "run")
        loso = time.perf_counter() - start
    print(f"demo-sized inputs ({len(data)} x 3 x 28 x 28 float32, {data.inputs['flow'].nbytes / 2**20:.2f} MiB): "
          f"fingerprint {fingerprint * 1e3:.2f} ms; one LOSO seed of the demo's STSTNet {loso:.1f} s; "
          f"share {100 * fingerprint / loso:.4f} %")
    if (COMPOSITE / "manifest.csv").is_file():
        from merkit.inputs import read_composite

        start = time.perf_counter()
        composite = read_composite(COMPOSITE)
        read = time.perf_counter() - start
        size = sum(t.nbytes for t in composite.inputs.values()) / 2**20
        took = median_seconds(composite.fingerprint)
        print(f"MEGC2019 composite ({len(composite)} samples, {size:.2f} MiB of inputs): fingerprint "
              f"{took * 1e3:.2f} ms; reading the folder {read:.2f} s")
    else:
        print(f"MEGC2019 composite: skipped ({COMPOSITE} not found)")
    big = FeatureSet(pd.DataFrame({"sample_id": ["a/b/c"], "label": [0]}),
                     {"x": torch.zeros(1, 64 * 2**20, dtype=torch.float32)}, ("a",))
    took = median_seconds(big.fingerprint)
    print(f"256 MiB tensor: fingerprint {took:.3f} s ({0.25 / took:.2f} GiB/s)")


if __name__ == "__main__":
    main()

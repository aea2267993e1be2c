"""Time ONE leave-one-subject-out fold of SLSTT (cpu preset, F = 1) on the MEGC2019 composite; extrapolate x68.

    python benchmarks/bench_slstt_fold.py configs/megc2019/slstt-lstm.yaml [--data DIR] [--fold 10]

One fold is one :func:`merkit.training.runner.run_unit` call (train on 67 subjects for the config's epochs, predict
the held-out subject) with ``protocol.threads_per_fold`` threads. It prints the wall time and the process CPU time:
on a shared machine the wall time depends on the other jobs, the CPU time much less. The x68 figures are an
extrapolation from one fold, not a measured LOSO.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/megc2019-composite"))
    parser.add_argument("--fold", type=int, default=10)
    args = parser.parse_args()

    from merkit.config import load_config
    from merkit.datasets.flow_folder import load_flow_folder
    from merkit.models.slstt import PretrainedWeightsWarning
    from merkit.training.loso import loso_folds
    from merkit.training.runner import run_unit

    # the cpu preset is randomly initialised by design; the warning is documented, not news here
    warnings.simplefilter("ignore", PretrainedWeightsWarning)
    config = load_config(args.config)
    d = config.data
    data = load_flow_folder(args.data, d.scheme, d.channels, d.file_channels, d.with_apex, d.apex_size)
    fold = loso_folds(data.table)[args.fold]
    wall, cpu = time.perf_counter(), time.process_time()
    preds = run_unit(config, data, fold, seed=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    acc = float((preds["label"] == preds["prediction"]).mean())
    print(f"{config.name}: fold {fold.subject_id} ({len(fold.train_index)} train / {len(fold.test_index)} test), "
          f"{config.training.epochs} epochs, {config.protocol.threads_per_fold} thread(s): wall {wall:.1f} s, "
          f"CPU {cpu:.1f} s (test acc {acc:.2f}); x68 folds (extrapolation): wall {wall * 68 / 60:.1f} min, "
          f"CPU {cpu * 68 / 60:.1f} min per seed")


if __name__ == "__main__":
    main()

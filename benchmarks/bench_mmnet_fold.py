"""Time ONE leave-one-subject-out fold of MMNet / CVA+FPF on the MEGC2019 composite and extrapolate to 68 folds.

    python benchmarks/bench_mmnet_fold.py configs/megc2019/mmnet-flow.yaml [--data DIR] [--fold 0] [--epochs N]

One fold = one :func:`merkit.training.runner.run_unit` call (train on 67 subjects, predict the held-out one), with
the config's preset, training recipe and ``protocol.threads_per_fold`` threads. ``--epochs`` shortens training;
the time is then scaled to the config's epoch count. The x68 figure is an extrapolation, not a measured LOSO.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/megc2019-composite"))
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()

    from merkit.config import load_config
    from merkit.datasets.flow_folder import load_flow_folder
    from merkit.training.loso import loso_folds
    from merkit.training.runner import run_unit

    config = load_config(args.config)
    full_epochs = config.training.epochs
    if args.epochs:
        config.training.epochs = args.epochs
    d = config.data
    data = load_flow_folder(args.data, d.scheme, d.channels, d.file_channels, d.with_apex, d.apex_size)
    fold = loso_folds(data.table)[args.fold]
    start = time.perf_counter()
    preds = run_unit(config, data, fold, seed=0)
    seconds = time.perf_counter() - start
    per_fold = seconds * full_epochs / config.training.epochs
    acc = float((preds["label"] == preds["prediction"]).mean())
    print(f"{config.name}: fold {fold.subject_id} ({len(fold.train_index)} train / {len(fold.test_index)} test), "
          f"{config.training.epochs} epochs, {config.protocol.threads_per_fold} thread(s): {seconds:.1f} s "
          f"(test acc {acc:.2f}); scaled to {full_epochs} epochs {per_fold:.1f} s; x68 folds = "
          f"{per_fold * 68 / 60:.1f} min per seed (extrapolation)")


if __name__ == "__main__":
    main()

"""Time ONE leave-one-subject-out fold of any run config and extrapolate to the whole LOSO.

    python benchmarks/bench_fold.py CONFIG [--data DIR] [--fold K] [--epochs N] [--set KEY=VALUE ...]

One fold is one :func:`merkit.training.runner.run_unit` call (train on every other subject, predict the held-out
one) with the config's model, training recipe and ``protocol.threads_per_fold`` threads. ``--epochs`` shortens
training, and the time is then scaled to the config's epoch count. ``--set`` overrides a config key, as
``merkit evaluate --set`` does (``--set training.fused_optimizer=true``). The script prints the wall time and the
process CPU time. On a shared machine the wall time depends on the other jobs; the CPU time much less. The "x
folds" figures are extrapolations from one fold, not a measured LOSO. Warnings raised while building or training
(e.g. SLSTT's randomly initialised CPU preset) are printed once, as notes.
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
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    from merkit.api import load_features
    from merkit.config import load_config
    from merkit.training.loso import loso_folds
    from merkit.training.runner import run_unit

    config = load_config(args.config, [f"data.path={args.data}", *args.set])
    full_epochs = config.training.epochs
    if args.epochs:
        config.training.epochs = args.epochs
    data = load_features(config)
    folds = loso_folds(data.table)
    fold = folds[args.fold]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wall, cpu = time.perf_counter(), time.process_time()
        preds = run_unit(config.resolve().protocol, data, fold, seed=0, threads=config.protocol.threads_per_fold)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    scale = full_epochs / config.training.epochs
    acc = float((preds["label"] == preds["prediction"]).mean())
    print(f"{config.name}: fold {fold.name} ({len(fold.train_index)} train / {len(fold.test_index)} test), "
          f"{config.training.epochs} epochs, {config.protocol.threads_per_fold} thread(s): wall {wall:.1f} s, "
          f"CPU {cpu:.1f} s (test acc {acc:.2f})")
    print(f"scaled to {full_epochs} epochs and x{len(folds)} folds (extrapolation): wall "
          f"{wall * scale * len(folds) / 60:.1f} min, CPU {cpu * scale * len(folds) / 60:.1f} min per seed")
    for message in sorted({str(w.message) for w in caught}):
        print(f"note: {message}")


if __name__ == "__main__":
    main()

"""Time training epochs of a config on one LOSO fold's training rows (nothing is scored, no test row is read).

Usage::

    PYTHONPATH=src python docs/scripts/epoch_time.py configs/megc2019/sssnet.yaml --epochs 2 \
        --data ../shared/data/megc2019-composite

Prints the seconds per epoch with one torch thread (a closed-form model's fit counts as its one epoch). Times on a
shared machine vary with its load; say the load (``uptime``) next to any figure.
"""

from __future__ import annotations

import argparse
import time

import torch

from merkit.api import load_features
from merkit.config import load_config
from merkit.training.engine import fit
from merkit.training.loso import make_folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config(args.config, [f"training.epochs={args.epochs}", f"data.path={args.data}"])
    plan = config.resolve()
    features = load_features(config)
    train = features.subset(make_folds(features.table)[0].train_index)
    torch.manual_seed(0)
    model = plan.protocol.own.model.build(len(features.classes))
    start = time.perf_counter()
    fit(model, train, plan.protocol.own.training, torch.Generator().manual_seed(0))
    seconds = (time.perf_counter() - start) / args.epochs
    print(f"{args.config}: {len(train)} training rows, {seconds:.3f} s per epoch (1 thread)")


if __name__ == "__main__":
    main()

"""The cost of the selection protocols, as ratios to the honest last-epoch protocol on the same folds.

    python benchmarks/bench_protocols.py --data ../shared/data/megc2019-composite [--folds 6]

Runs STSTNet's shipped recipe (configs/megc2019/ststnet.yaml) on the first ``--folds`` LOSO folds of the composite,
seed 0, one unit after another in this process, under ``selection: last``, ``selection: inner`` (5 inner folds)
and ``protocol.ensemble: 5``, and prints the seconds per fold of each and its ratio to ``last``. Inner selection
trains k inner models and one outer model per fold, so its ratio should be near k + 1 = 6.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import torch

from merkit.api import load_features
from merkit.config import load_config
from merkit.training.loso import loso_folds
from merkit.training.runner import compute_unit

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"last": [], "inner": ["protocol.selection=inner"], "ensemble5": ["protocol.ensemble=5"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "megc2019-composite")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "megc2019" / "ststnet.yaml")
    ap.add_argument("--folds", type=int, default=6)
    args = ap.parse_args()
    base = [f"data.path={args.data}", "protocol.seeds=[0]", "protocol.save_checkpoints=false"]
    features = load_features(load_config(args.config, base))
    folds = loso_folds(features.table)[: args.folds]
    results = {"date": str(date.today()), "machine": f"{platform.machine()}, torch {torch.__version__}",
               "folds": len(folds), "seconds_per_fold": {}}
    for name, extra in VARIANTS.items():
        config = load_config(args.config, base + extra)
        start = time.perf_counter()
        for fold in folds:
            compute_unit(config.resolve().protocol, features, fold, 0, config.protocol.threads_per_fold)
        results["seconds_per_fold"][name] = round((time.perf_counter() - start) / len(folds), 2)
        print(name, results["seconds_per_fold"][name], flush=True)
    last = results["seconds_per_fold"]["last"]
    results["ratio_to_last"] = {k: round(v / last, 2) for k, v in results["seconds_per_fold"].items()}
    print(json.dumps(results))


if __name__ == "__main__":
    main()

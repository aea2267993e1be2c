"""Time one seed of the full 68-fold MEGC2019-composite LOSO of STSTNet, as shipped in configs/megc2019/ststnet.yaml.

    python benchmarks/bench_ststnet_loso.py --data ../shared/data/megc2019-composite [--workers 1 2 4] [--cluster]

For each worker count it runs the whole LOSO (seed 0) into a fresh temporary folder and prints the wall time
and pooled UF1/UAR. ``--cluster`` also runs it on a two-node Ray cluster started on this machine
(``ray.cluster_utils.Cluster``, one CPU per node), reached through its address as a lab's cluster would be.
With ``--naive-folds K`` it also times a naive reference loop (the three branches as three convolutions in NCHW
layout, a DataLoader, per-sample Python collation) on the first K folds and reports the per-fold time ratio
measured in the same process, since absolute times on a shared machine drift.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from merkit.api import evaluate
from merkit.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def naive_fold_seconds(cfg, features, folds) -> float:
    """A typical copy-pasted loop: nn.Sequential branches, NCHW, DataLoader; mean seconds per fold."""
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    class Naive(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.ModuleList(nn.Sequential(nn.Conv2d(3, f, 3, padding=1), nn.ReLU()) for f in (3, 5, 8))
            self.rest = nn.Sequential(nn.BatchNorm2d(16), nn.MaxPool2d(3, 3, 1), nn.AvgPool2d(2, 2),
                                      nn.Flatten(), nn.Linear(400, 3))

        def forward(self, x):
            return self.rest(torch.cat([b(x) for b in self.b], 1))

    torch.set_num_threads(1)
    x, y = features.inputs["flow"], features.labels
    start = time.perf_counter()
    for fold in folds:
        torch.manual_seed(0)
        model = Naive()
        opt = torch.optim.Adam(model.parameters(), lr=cfg.training.lr)
        loader = DataLoader(TensorDataset(x[fold.train_index], y[fold.train_index]),
                            batch_size=cfg.training.batch_size, shuffle=True)
        for _ in range(cfg.training.epochs):
            for xb, yb in loader:
                opt.zero_grad()
                nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
        with torch.no_grad():
            model.eval()
            model(x[fold.test_index]).argmax(1)
    return (time.perf_counter() - start) / len(folds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "megc2019-composite")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "megc2019" / "ststnet.yaml")
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--naive-folds", type=int, default=0)
    ap.add_argument("--cluster", action="store_true", help="also run on a local two-node Ray cluster")
    args = ap.parse_args()
    results = {"date": str(date.today()), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads "
               f"available, torch {torch.__version__}", "runs": []}
    for workers in args.workers:
        cfg = load_config(args.config, [f"data.path={args.data}", "protocol.seeds=[0]",
                                        f"protocol.workers={workers}", "protocol.save_checkpoints=false"])
        with tempfile.TemporaryDirectory() as tmp:
            res = evaluate(cfg, Path(tmp) / "run", progress=False)
        full = res.metrics["summary"]["full"]
        row = {"workers": workers, "seconds": round(res.seconds, 1), "uf1": round(full["uf1"]["mean"], 4),
               "uar": round(full["uar"]["mean"], 4), "epochs": cfg.training.epochs}
        results["runs"].append(row)
        print(json.dumps(row), flush=True)
    if args.cluster:
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, connect=False,
                          head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
        try:
            cfg = load_config(args.config, [f"data.path={args.data}", "protocol.seeds=[0]",
                                            f"protocol.address={cluster.address}", "protocol.save_checkpoints=false"])
            with tempfile.TemporaryDirectory() as tmp:
                res = evaluate(cfg, Path(tmp) / "run", progress=False)
            full = res.metrics["summary"]["full"]
            row = {"cluster": "2 nodes x 1 CPU", "seconds": round(res.seconds, 1),
                   "uf1": round(full["uf1"]["mean"], 4), "uar": round(full["uar"]["mean"], 4)}
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
        finally:
            cluster.shutdown()
    if args.naive_folds:
        from merkit.api import load_features
        from merkit.training.loso import loso_folds

        cfg = load_config(args.config, [f"data.path={args.data}"])
        features = load_features(cfg)
        folds = loso_folds(features.table)[: args.naive_folds]
        naive = naive_fold_seconds(cfg, features, folds)
        cfg1 = load_config(args.config, [f"data.path={args.data}", "protocol.seeds=[0]", "protocol.workers=1",
                                         "protocol.save_checkpoints=false"])
        from merkit.training.runner import run_unit

        start = time.perf_counter()
        for fold in folds:
            run_unit(cfg1.resolve().protocol, features, fold, 0, cfg1.protocol.threads_per_fold)
        merkit_fold = (time.perf_counter() - start) / len(folds)
        results["per_fold"] = {"naive_s": round(naive, 3), "merkit_s": round(merkit_fold, 3),
                               "speedup": round(naive / merkit_fold, 2), "folds_timed": len(folds)}
        print(json.dumps(results["per_fold"]), flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()

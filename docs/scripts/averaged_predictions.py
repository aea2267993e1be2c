"""Pooled UF1/UAR of averaged class probabilities: over a run's last K recorded epochs, or over its seeds.

Regenerates the "averaging" figures of docs/results.md ("Weight averaging, longer training and averaged
predictions"). Both averages are formed without looking at any label, but K and the choice to average were read off
runs on the same 442 samples, so they are diagnostics, not results of a fixed recipe.

    python docs/scripts/averaged_predictions.py tail RUN [RUN ...]     # needs protocol.record_epochs=true
    python docs/scripts/averaged_predictions.py seeds RUN [RUN ...]    # needs a run with several seeds

``tail``: for each K in 1, 3, 5, 10, 15, 20, 30 (K no larger than the run's epochs), each sample's probabilities are
averaged over epochs E-K+1..E of its fold (E: the last epoch), per seed; the prediction is the arg-max; UF1 and UAR
are pooled over the folds of each seed and averaged over seeds. K = 1 is the run's honest figure.
``seeds``: each sample's last-epoch probabilities (``predictions.csv``) are averaged over the run's seeds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from merkit.evaluation.metrics import pooled_metrics


def _prob_columns(df: pd.DataFrame) -> list[str]:
    cols = [c for c in df.columns if c.startswith("prob_")]
    if not cols:
        raise SystemExit("the predictions carry no prob_* columns")
    return cols


def _score(df: pd.DataFrame, probs: list[str]) -> dict[str, float]:
    pred = df[probs].to_numpy().argmax(axis=1)
    return pooled_metrics(df["label"].to_numpy(), pred, len(probs))


def tail(run: Path) -> str:
    files = sorted((run / "epochs").glob("seed*/*.csv"))
    if not files:
        raise SystemExit(f"{run}: no recorded epochs (run with --set protocol.record_epochs=true)")
    curves = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    probs, last = _prob_columns(curves), int(curves["epoch"].max())
    cells = []
    for k in (1, 3, 5, 10, 15, 20, 30):
        if k > last:
            break
        window = curves[curves["epoch"] > last - k]
        per_seed = [_score(d.groupby("sample_id").agg({**{p: "mean" for p in probs}, "label": "first"}), probs)
                    for _, d in window.groupby("seed")]
        cells.append(f"K={k}: UF1 {np.mean([m['uf1'] for m in per_seed]):.4f} "
                     f"UAR {np.mean([m['uar'] for m in per_seed]):.4f}")
    return f"{run}  ({curves['fold'].nunique()} folds, {last} epochs)\n  " + "\n  ".join(cells)


def seeds(run: Path) -> str:
    preds = pd.read_csv(run / "predictions.csv")
    probs = _prob_columns(preds)
    mean = preds.groupby("sample_id").agg({**{p: "mean" for p in probs}, "label": "first"})
    m = _score(mean, probs)
    return (f"{run}  (seeds {sorted(int(s) for s in preds['seed'].unique())}): probabilities averaged over seeds: "
            f"UF1 {m['uf1']:.4f} UAR {m['uar']:.4f}")


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] not in ("tail", "seeds"):
        raise SystemExit(__doc__)
    for run in argv[1:]:
        print((tail if argv[0] == "tail" else seeds)(Path(run)))


if __name__ == "__main__":
    main(sys.argv[1:])

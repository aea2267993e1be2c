"""Metrics pooled over all LOSO folds, as the MEGC2019 recognition challenge defines them.

For a set of predictions (one seed, every fold pooled):

* ``UF1`` (unweighted F1, macro F1) = mean over classes c of ``2 TP_c / (2 TP_c + FP_c + FN_c)``;
* ``UAR`` (unweighted average recall) = mean over classes c of ``TP_c / N_c``;
* accuracy and the confusion matrix (rows = ground truth, columns = prediction).

They are computed on the predictions pooled over every fold, not averaged per fold (the per-fold mean is
reported separately as a secondary figure, and is not comparable). Source: MEGC2019 recognition challenge
guidelines; See et al., "MEGC 2019 - the second facial micro-expressions grand challenge", FG 2019.

A class with no ground-truth sample in a part (e.g. one dataset of the composite) has no recall and no
meaningful F1: the macro averages then run over the classes present in that part's ground truth, and the
result lists the absent classes (``absent_classes``) so a report can say so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score, recall_score


def pooled_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    """UF1, UAR, accuracy and confusion for integer labels/predictions in ``0..num_classes-1``.

    Returns:
        ``{"uf1", "uar", "accuracy", "n", "confusion" (list of lists), "absent_classes" (list of int)}``.
        With no samples at all every figure is ``nan``.

    Raises:
        ValueError: a label or prediction lies outside ``0..num_classes-1``.
    """
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    all_labels = list(range(num_classes))
    for name, arr in (("label", y_true), ("prediction", y_pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name}s must lie in 0..{num_classes - 1}")
    if y_true.size == 0:
        nan = float("nan")
        return {"uf1": nan, "uar": nan, "accuracy": nan, "n": 0,
                "confusion": np.zeros((num_classes, num_classes), int).tolist(), "absent_classes": all_labels}
    present = sorted(set(y_true.tolist()))
    absent = [c for c in all_labels if c not in present]
    return {
        "uf1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "uar": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "accuracy": float((y_true == y_pred).mean()),
        "n": int(y_true.size),
        "confusion": confusion_matrix(y_true, y_pred, labels=all_labels).tolist(),
        "absent_classes": absent,
    }


def metrics_by_part(preds: pd.DataFrame, num_classes: int) -> dict[str, dict]:
    """Pooled metrics for the full set (``"full"``) and for each ``dataset`` value (the composite's parts)."""
    out = {"full": pooled_metrics(preds["label"], preds["prediction"], num_classes)}
    for part, df in preds.groupby("dataset", sort=True):
        out[str(part)] = pooled_metrics(df["label"], df["prediction"], num_classes)
    return out


def per_class_metrics(preds: pd.DataFrame, num_classes: int) -> list[dict]:
    """Precision, recall, F1 and support of each class on the pooled predictions of one seed."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, n = precision_recall_fscore_support(preds["label"], preds["prediction"], labels=list(range(num_classes)),
                                                 zero_division=0)
    return [{"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]), "support": int(n[k])}
            for k in range(num_classes)]


def per_fold_mean(preds: pd.DataFrame, num_classes: int) -> dict[str, float]:
    """Secondary figure: metrics computed per fold, then averaged over folds (not comparable with pooled)."""
    rows = [pooled_metrics(df["label"], df["prediction"], num_classes) for _, df in preds.groupby("fold")]
    return {k: float(np.nanmean([r[k] for r in rows])) for k in ("uf1", "uar", "accuracy")}


def summarize_run(preds: pd.DataFrame, classes: tuple[str, ...] | list[str]) -> dict:
    """Metrics of a run with one or more seeds.

    Returns:
        ``{"classes", "seeds", "per_seed": {seed: {part: metrics}}, "per_fold_mean": {seed: {...}},
        "summary": {part: {metric: {"mean", "std", "values"}}}, "per_class": {class: {precision, recall, f1,
        support}}}``; std is the sample standard deviation over seeds (0 with a single seed); per-class figures
        are on the full set, pooled over folds, averaged over seeds (support: samples per seed).
    """
    k = len(classes)
    per_seed, fold_means, classwise = {}, {}, []
    for seed, df in preds.groupby("seed", sort=True):
        per_seed[int(seed)] = metrics_by_part(df, k)
        fold_means[int(seed)] = per_fold_mean(df, k)
        classwise.append(per_class_metrics(df, k))
    per_class = {
        name: {m: float(np.mean([c[i][m] for c in classwise])) for m in ("precision", "recall", "f1")}
        | {"support": classwise[0][i]["support"]}
        for i, name in enumerate(classes)
    }
    parts = sorted({p for m in per_seed.values() for p in m}, key=lambda p: (p != "full", p))
    summary: dict[str, dict] = {}
    for part in parts:
        summary[part] = {}
        for metric in ("uf1", "uar", "accuracy"):
            values = [per_seed[s][part][metric] for s in per_seed if part in per_seed[s]]
            summary[part][metric] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                "values": values,
            }
    return {"classes": list(classes), "seeds": sorted(per_seed), "per_seed": per_seed,
            "per_fold_mean": fold_means, "summary": summary, "per_class": per_class}


def epoch_curve(curves: pd.DataFrame, num_classes: int) -> pd.DataFrame:
    """The pooled test-set learning curve of a run recorded with ``protocol.record_epochs``.

    Args:
        curves: per-epoch predictions tables (columns ``seed``, ``epoch``, ``fold``, ``label``, ``prediction``),
            as written to ``<run>/epochs/seed<S>/<fold>.csv``.

    Returns:
        One row per epoch: ``epoch``, ``folds`` (fewest folds of any seed at that epoch), ``uf1``, ``uar``,
        ``accuracy`` (means over seeds of the figures pooled over each seed's folds), ``uf1_std`` (sample std over
        seeds, ``nan`` with one seed). A fixed epoch read off this curve is chosen on the test subjects.
    """
    rows = []
    for (epoch, seed), df in curves.groupby(["epoch", "seed"], sort=True):
        m = pooled_metrics(df["label"].to_numpy(), df["prediction"].to_numpy(), num_classes)
        rows.append({"epoch": int(epoch), "seed": int(seed), "folds": df["fold"].nunique(),
                     "uf1": m["uf1"], "uar": m["uar"], "accuracy": m["accuracy"]})
    per_seed = pd.DataFrame(rows, columns=["epoch", "seed", "folds", "uf1", "uar", "accuracy"])
    out = per_seed.groupby("epoch").agg(folds=("folds", "min"), uf1=("uf1", "mean"), uar=("uar", "mean"),
                                        accuracy=("accuracy", "mean"), uf1_std=("uf1", "std"))
    return out.reset_index()


def loss_curve(losses: pd.DataFrame) -> pd.DataFrame:
    """The mean training loss per epoch over a run's units.

    Args:
        losses: the units' training-loss tables (columns ``seed``, ``fold``, ``member``, ``epoch``,
            ``train_loss``), as written to ``<run>/losses/seed<S>/<fold>.csv``.

    Returns:
        One row per epoch: ``epoch``, ``train_loss`` (mean over the units' member models), ``train_loss_min``,
        ``train_loss_max`` (their range), ``units`` (the (seed, fold) units that trained that epoch; under inner
        selection a unit stops at its chosen epoch). It reads no test data.
    """
    table = losses.assign(unit=losses["seed"].astype(str) + "\0" + losses["fold"].astype(str))
    out = table.groupby("epoch", sort=True).agg(train_loss=("train_loss", "mean"),
                                                train_loss_min=("train_loss", "min"),
                                                train_loss_max=("train_loss", "max"), units=("unit", "nunique"))
    return out.reset_index()

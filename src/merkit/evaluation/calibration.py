"""Calibrated probabilities: a temperature fitted on a LOSO run's out-of-fold predictions (temperature scaling:
Guo, Pleiss, Sun and Weinberger, "On calibration of modern neural networks", ICML 2017), the expected calibration
error (ECE) and a reliability diagram.

Why out-of-fold: a model's probabilities on its own training samples are overconfident, so a temperature fitted
there would be wrong for new faces. In a leave-one-subject-out run each sample's prediction comes from a model
that never saw its subject, which is the situation of a new user. :func:`read_out_of_fold` therefore reads only a
run folder's ``predictions.csv``, and refuses a run whose predictions are not honest out-of-fold predictions: a
split other than LOSO, a test-selected epoch (``selection: paper``), or a row whose fold is not its own subject.

The temperature ``T`` minimises the negative log-likelihood of ``softmax(log p / T)`` over the pooled rows (all
seeds); it rescales confidence and never changes which class is on top. The ECE is the standard one: top
probabilities in 15 equal bins over [0, 1], the mean |accuracy - confidence| weighted by the bins' counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merkit.errors import ConfigError
from merkit.runfolder import RunFolder

#: Bins of the expected calibration error and the reliability diagram.
ECE_BINS = 15
#: The search range of the temperature.
TEMPERATURE_RANGE = (0.05, 20.0)
#: Honest selections: the epoch is not chosen on the test subject (``merkit.config.ProtocolConfig.selection``).
HONEST_SELECTIONS = ("last", "inner")


@dataclass
class OutOfFold:
    """A LOSO run's out-of-fold predictions: ``probabilities`` (N, K) float64, ``labels`` (N,) int, the class
    names, the run folder, its seeds and its number of subjects."""

    probabilities: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    run: Path
    seeds: list[int]
    subjects: int


def read_out_of_fold(run: str | Path) -> OutOfFold:
    """The out-of-fold predictions of a finished LOSO run folder (``merkit evaluate``): its ``predictions.csv``
    and nothing else, checked against its ``config.yaml``.

    Raises:
        ConfigError: not a finished run folder (no ``config.yaml`` or ``predictions.csv``); a split other than
            ``loso``; a test-selected epoch (``protocol.selection: paper``); or predictions that are not
            out-of-fold (a row whose fold is not its own subject: it was predicted by a model that saw it), or
            without ``prob_<class>`` columns. The message names the folder.
    """
    import yaml

    folder = RunFolder(run)
    config_path, path = folder.file(RunFolder.CONFIG), folder.file(RunFolder.PREDICTIONS)
    for needed in (config_path, path):
        if not needed.is_file():
            raise ConfigError(f"{needed} not found: calibration needs a finished LOSO run folder (merkit evaluate)")
    protocol = (yaml.safe_load(config_path.read_text()) or {}).get("protocol") or {}
    split, selection = protocol.get("split", "loso"), protocol.get("selection", "last")
    if split != "loso":
        raise ConfigError(f"{run} is a {split!r} run; a temperature is fitted on leave-one-subject-out predictions "
                          "only (protocol.split: loso)")
    if selection not in HONEST_SELECTIONS:
        raise ConfigError(f"{run} chose its epochs on the test subjects (protocol.selection: {selection}); its "
                          f"probabilities are not honest out-of-fold ones: use a run with selection "
                          f"{' or '.join(HONEST_SELECTIONS)}")
    table = pd.read_csv(path, dtype={"subject": str, "sample": str, "fold": str, "subject_id": str})
    probs = [c for c in table.columns if c.startswith("prob_")]
    if not probs or not {"fold", "subject_id", "label", "seed"} <= set(table.columns):
        raise ConfigError(f"{path} lacks prob_<class>, fold, subject_id, label or seed columns")
    inside = table[table["fold"] != table["subject_id"]]
    if len(inside):
        row = inside.iloc[0]
        raise ConfigError(f"{path}: sample {row['sample_id']} was predicted in fold {row['fold']}, not in its own "
                          f"subject's ({row['subject_id']}), so by a model that saw it; {len(inside)} such rows: "
                          "these are not out-of-fold predictions")
    p = table[probs].to_numpy(dtype=np.float64)
    return OutOfFold(p / p.sum(axis=1, keepdims=True), table["label"].to_numpy(dtype=int),
                     tuple(c[len("prob_"):] for c in probs), Path(run),
                     sorted(int(s) for s in table["seed"].unique()), int(table["subject_id"].nunique()))


def _scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(probabilities, 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean ``-log p[label]`` after the temperature."""
    p = _scaled(probabilities, temperature)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None))))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of (N, K) probabilities: top probabilities in ``bins`` equal bins over [0, 1], mean |accuracy -
    confidence| weighted by the bins' counts (Guo et al. 2017, eq. 3)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood (scipy's bounded scalar search over
    :data:`TEMPERATURE_RANGE`, on log T)."""
    from scipy.optimize import minimize_scalar

    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    found = minimize_scalar(lambda t: negative_log_likelihood(probabilities, labels, float(np.exp(t))),
                            bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


def calibrate_run(run: str | Path) -> tuple[dict[str, Any], OutOfFold]:
    """Fit the temperature of a LOSO run (:func:`read_out_of_fold`, :func:`fit_temperature`).

    Returns:
        ``(record, predictions)``: the record stored in a checkpoint's ``calibration`` (``temperature``,
        ``method``, ``fitted_on`` (the run folder's name (no path: a checkpoint travels), its seeds, samples and subjects), ``ece_before``,
        ``ece_after``, ``nll_before``, ``nll_after``, ``bins``) and the predictions it was fitted on.

    Raises:
        ConfigError: as :func:`read_out_of_fold`.
    """
    oof = read_out_of_fold(run)
    t = fit_temperature(oof.probabilities, oof.labels)
    after = _scaled(oof.probabilities, t)
    record = {"temperature": round(t, 6), "method": "temperature scaling (Guo et al., ICML 2017), NLL",
              "fitted_on": {"run": oof.run.name, "split": "loso", "seeds": oof.seeds,
                            "rows": int(len(oof.labels)), "subjects": oof.subjects},
              "bins": ECE_BINS,
              "ece_before": round(expected_calibration_error(oof.probabilities, oof.labels), 4),
              "ece_after": round(expected_calibration_error(after, oof.labels), 4),
              "nll_before": round(negative_log_likelihood(oof.probabilities, oof.labels), 4),
              "nll_after": round(negative_log_likelihood(oof.probabilities, oof.labels, t), 4)}
    return record, oof


def reliability_figure(oof: OutOfFold, record: dict[str, Any], path: str | Path) -> Path:
    """Write the reliability diagram before and after the temperature: per bin of top probability, the
    accuracy against the confidence, with each panel's ECE."""
    from matplotlib.figure import Figure

    from merkit.files import write_atomic

    fig = Figure(figsize=(8, 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    edges = np.linspace(0, 1, ECE_BINS + 1)
    for ax, (title, p, ece) in zip(axes, [
            ("before (T = 1)", oof.probabilities, record["ece_before"]),
            (f"after (T = {record['temperature']:.2f})", _scaled(oof.probabilities, record["temperature"]),
             record["ece_after"])]):
        confidence, correct = p.max(axis=1), p.argmax(axis=1) == oof.labels
        which = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
        accuracy = [correct[which == b].mean() if (which == b).any() else np.nan for b in range(ECE_BINS)]
        counts = np.bincount(which, minlength=ECE_BINS)
        ax.bar(edges[:-1], accuracy, width=1 / ECE_BINS, align="edge", edgecolor="black", color="tab:blue",
               alpha=0.7, label="accuracy")
        ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
        for b in range(ECE_BINS):
            if counts[b]:
                ax.text(edges[b] + 0.5 / ECE_BINS, 0.02, str(counts[b]), ha="center", fontsize=6, rotation=90)
        ax.set_title(f"{title}: ECE {ece:.3f}", fontsize=9)
        ax.set_xlabel("top probability (confidence)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=7, loc="upper left")
    fitted = record["fitted_on"]
    fig.suptitle(f"LOSO out-of-fold predictions: {fitted['rows']} rows, {fitted['subjects']} subjects, seeds "
                 f"{', '.join(map(str, fitted['seeds']))}", fontsize=9)
    fig.tight_layout()
    return write_atomic(path, lambda p: fig.savefig(p, dpi=90))

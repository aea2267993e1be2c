"""Regenerate ``docs/img/predict_sim_to_real.png``: the packaged real-data model on merkit's synthetic clips.

``megc2019-ststnet`` was trained on the 442 real samples of the MEGC2019 composite and never saw a synthetic clip.
Here it recognises every clip of merkit's synthetic release at ``merkit synth``'s default settings (5 subjects x
3 classes x 4 clips, seed 0; the demo's release), whose inputs are made with the model's own preprocessing record
(:func:`merkit.inputs.build_inputs`, cached; ``docs/scripts/input_match_figure.py`` builds the same cache) and fed
through :meth:`merkit.predict.Predictor.forward`, the step ``merkit predict`` runs. No training, no calibration.

It reports accuracy, UF1 and UAR (:func:`merkit.evaluation.metrics.pooled_metrics`) against two chance levels:
guessing uniformly at random (accuracy 1/3; UF1 and UAR about 1/3 on balanced classes) and a permutation test that
keeps the model's own mix of predicted classes (the labels shuffled 10,000 times; the 95th percentile and the
p-value). The figure shows the confusion matrix, the figures against chance and the mean predicted probabilities
per true class. Read it both ways: a model that transfers recognises the synthetic expressions, and synthetic
expressions that look real are recognised by a real-data model.

About 2-3 minutes on a 2-core CPU the first time (TV-L1 at 224 px on 60 clips), then seconds.

``--crop`` and ``--margin`` replace the face crop of the model's record (``Predictor.from_pretrained(...,
preprocessing=...)``), a what-if for the crop comparison in ``docs/predict.md``; the packaged record is unchanged.

Run: ``python docs/scripts/sim_to_real.py [--subjects 5] [--clips-per-class 4] [--seed 0] [--crop C --margin M]
[--figure docs/img/predict_sim_to_real.png]``
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
PERMUTATIONS = 10_000


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from merkit.datasets import load_dataset
    from merkit.demo import cached_dataset
    from merkit.evaluation.metrics import pooled_metrics
    from merkit.files import write_atomic
    from merkit.inputs.build import build_inputs, default_cache_dir, release_cache_dir
    from merkit.predict import Predictor
    from merkit.pretrained import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=5)
    parser.add_argument("--clips-per-class", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop", choices=("slstt", "eyes", "landmarks"), default=None)
    parser.add_argument("--margin", type=float, default=None)
    parser.add_argument("--figure", type=Path, default=REPO / "docs" / "img" / "predict_sim_to_real.png")
    args = parser.parse_args()

    record = None
    if args.crop is not None or args.margin is not None:
        record = Predictor.from_pretrained(DEFAULT_MODEL).preprocessing
        face = dataclasses.replace(record.face, **{k: v for k, v in (("crop", args.crop), ("margin", args.margin))
                                                   if v is not None})
        record = dataclasses.replace(record, face=face)
    predictor = Predictor.from_pretrained(DEFAULT_MODEL, preprocessing=record)
    what_if = "" if record is None else f", face crop {record.face.crop} (margin {record.face.margin}) instead of " \
        "the packaged record's"
    cache = default_cache_dir() / "demo"
    cache.mkdir(parents=True, exist_ok=True)
    root = cached_dataset(cache, args.subjects, args.clips_per_class, args.seed)
    data = build_inputs(load_dataset("synthetic", root), predictor.preprocessing, cache=release_cache_dir(root))
    classes = list(predictor.classes)
    y_true = np.array([classes.index(data.classes[k]) for k in data.table["label"]])
    probs = np.stack([predictor.forward({"flow": flow})[0] for flow in np.asarray(data.inputs["flow"])])
    y_pred = probs.argmax(axis=1)
    result = pooled_metrics(y_true, y_pred, len(classes))

    rng = np.random.default_rng(0)
    null = np.array([[m[k] for k in ("accuracy", "uf1", "uar")] for m in (
        pooled_metrics(rng.permutation(y_true), y_pred, len(classes)) for _ in range(PERMUTATIONS))])
    observed = np.array([result["accuracy"], result["uf1"], result["uar"]])
    p_values = ((null >= observed).sum(axis=0) + 1) / (PERMUTATIONS + 1)
    q95 = np.percentile(null, 95, axis=0)
    skipped = data.meta.get("diagnostics", {})

    print(f"{DEFAULT_MODEL}{what_if} on {len(y_true)} synthetic clips ({root}); skipped: {skipped or 'none'}")
    print(f"predicted classes: {dict(zip(classes, np.bincount(y_pred, minlength=len(classes)).tolist()))}")
    print("| figure | model | uniform guess | permutation 95th percentile | p |\n|---|---|---|---|---|")
    for i, name in enumerate(("accuracy", "UF1", "UAR")):
        print(f"| {name} | {observed[i]:.3f} | {1 / len(classes):.3f} | {q95[i]:.3f} | {p_values[i]:.4f} |")
    print("confusion (rows true, columns predicted):", result["confusion"])

    confusion = np.array(result["confusion"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    ax = axes[0]
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{confusion[i, j]}\n{rates[i, j]:.0%}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.6 else "black", fontsize=9)
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="synthetic clip's class", title="confusion (count, row share)")
    ax = axes[1]
    x = np.arange(3)
    ax.bar(x, observed, 0.5, color="#1b9e77", label=DEFAULT_MODEL)
    ax.axhline(1 / len(classes), color="k", ls="--", lw=1, label="uniform guess (1/3)")
    ax.scatter(x, q95, marker="_", s=900, color="#d95f02", zorder=3, label="permutation 95th percentile")
    floor = 1 / (PERMUTATIONS + 1)  # no permutation reached the observed figure
    for i, v in enumerate(observed):
        p_text = f"p < {10 ** np.ceil(np.log10(floor)):.0e}" if p_values[i] <= floor else f"p = {p_values[i]:.3f}"
        ax.text(i, v + 0.02, f"{v:.2f}\n{p_text}", ha="center", fontsize=8)
    ax.set(xticks=x, xticklabels=["accuracy", "UF1", "UAR"], ylim=(0, 1), title="against chance")
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[2]
    bottom = np.zeros(len(classes))
    colours = ("#7570b3", "#e7298a", "#66a61e")
    for k, name in enumerate(classes):
        share = np.array([probs[y_true == i, k].mean() if (y_true == i).any() else 0 for i in range(len(classes))])
        ax.bar(np.arange(len(classes)), share, 0.6, bottom=bottom, color=colours[k], label=f"P({name})")
        bottom += share
    ax.set(xticks=range(len(classes)), xticklabels=classes, xlabel="synthetic clip's class", ylim=(0, 1),
           title="mean predicted probabilities")
    ax.legend(fontsize=7)
    fig.suptitle(f"Sim-to-real: {DEFAULT_MODEL} (trained on 442 real composite samples) on {len(y_true)} synthetic "
                 f"clips ({args.subjects} subjects x 3 classes x {args.clips_per_class}, seed {args.seed}), "
                 f"no training on them{what_if}", fontsize=9)
    fig.tight_layout()
    write_atomic(args.figure, lambda p: fig.savefig(p, dpi=110))
    print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()

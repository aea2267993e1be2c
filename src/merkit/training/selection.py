"""Honest model selection (``protocol.selection: inner``): choose the epoch count and the recipe on the training
subjects alone.

The papers choose each test subject's epoch on that subject's labels, which adds 0.09-0.17 UF1 to the same trained
models (docs/results.md). Inner selection recovers what it can without that: within one outer fold, the training
subjects are split into k subject-disjoint inner folds (grouped by subject, stratified by class where the counts
allow, :class:`sklearn.model_selection.StratifiedGroupKFold`); each candidate recipe is trained on k - 1 of them and
scored on the k-th after every epoch; the (recipe, epoch) with the best UF1 pooled over the k inner folds wins (ties:
the later epoch, then the recipe listed first). The outer model is then trained on all training subjects with that
recipe and stopped at that epoch of its schedule. The outer test subject's rows never reach this module:
:func:`choose` refuses a feature set that holds any of them.

The cost per recipe is at most about k + 1 times an honest run: k inner models on (k - 1)/k of the training
subjects and one outer model stopped at the chosen epoch. Measured for STSTNet on the composite with k = 5: 3.3
times (``benchmarks/bench_protocols.py``, docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from merkit.errors import ConfigError, LeakageError
from merkit.features import FeatureSet
from merkit.training.seeds import unit_seed


@dataclass
class Choice:
    """What inner selection chose for one outer fold and seed.

    Attributes:
        recipe: the recipe's name (:data:`merkit.config.DEFAULT_RECIPE` when the config lists none).
        epochs: the chosen epoch count.
        uf1: recipe -> the pooled inner UF1 after each epoch (index 0 = epoch 1).
        folds: k, and the number of training subjects split.
    """

    recipe: str
    epochs: int
    uf1: dict[str, list[float]] = field(default_factory=dict)
    folds: int = 0
    subjects: int = 0

    def to_dict(self) -> dict:
        return {"recipe": self.recipe, "epochs": self.epochs, "inner_uf1": self.uf1, "inner_folds": self.folds,
                "training_subjects": self.subjects}


def check_inner_folds(table, folds, k: int) -> None:
    """Refuse, before anything trains, outer folds with fewer training subjects than ``k`` inner folds.

    Args:
        table: the sample table the folds index (``subject_id`` column).
        folds: the outer folds (:class:`merkit.training.loso.Fold`).
        k: ``protocol.inner_folds``.

    Raises:
        ConfigError: an outer fold trains on fewer than ``k`` subjects; the message names the first such fold and
            the counts.
    """
    subjects = table["subject_id"].to_numpy()
    for fold in folds:
        count = len(set(subjects[fold.train_index]))
        if count < k:
            raise ConfigError(f"protocol.selection inner splits each outer fold's training subjects into "
                              f"protocol.inner_folds = {k} folds, but fold {fold.name} trains on {count} "
                              f"subject{'s' if count != 1 else ''}; set protocol.inner_folds to at most {count} (it "
                              "must be >= 2), or use more subjects")


def inner_splits(train: FeatureSet, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k subject-disjoint (fit, score) splits of ``train``'s rows, grouped by subject and stratified by class
    where possible.

    Raises:
        LeakageError: a split shares a subject between its two sides (cannot happen; asserted).
        ValueError: fewer training subjects than k.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups = train.table["subject_id"].to_numpy()
    if len(set(groups)) < k:
        raise ValueError(f"inner selection needs at least {k} training subjects, the fold has {len(set(groups))}")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed % (2 ** 32))
    splits = list(splitter.split(np.zeros(len(groups)), train.table["label"].to_numpy(), groups))
    for fit_rows, score_rows in splits:
        if set(groups[fit_rows]) & set(groups[score_rows]):
            raise LeakageError("an inner fold shares a subject between its fitting and scoring rows")
    return splits


def pooled_uf1(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> float:
    """UF1 of the pooled rows, as :func:`merkit.evaluation.metrics.pooled_metrics` computes it (MEGC2019)."""
    from merkit.evaluation.metrics import pooled_metrics

    return float(pooled_metrics(labels, predictions, num_classes)["uf1"])


def choose(protocol, train: FeatureSet, seed: int, fold: str, forbidden: set[str]) -> Choice:
    """The (recipe, epoch count) whose models, trained on k - 1 inner folds of ``train``, score the best pooled UF1
    on the remaining one (see the module docstring).

    Args:
        protocol: the run's :class:`merkit.config.Protocol`; its ``recipes`` are the candidates.
        train: the outer fold's training rows only.
        seed: the unit's seed; inner models draw from seeds derived from it, the fold and the recipe.
        fold: the outer fold's name, for the seeds.
        forbidden: the outer fold's test sample ids.

    Raises:
        LeakageError: ``train`` holds one of ``forbidden``'s samples.
    """
    from merkit.training.engine import fit, predict_proba

    leaked = forbidden & set(train.table["sample_id"])
    if leaked:
        raise LeakageError(f"inner selection of fold {fold} was given test samples {sorted(leaked)[:5]}")
    recipes = {r.name: r for r in protocol.recipes}
    k = protocol.inner_folds
    splits = inner_splits(train, k, unit_seed(seed, f"{fold}/inner"))
    labels = train.labels.numpy()
    curves: dict[str, list[float]] = {}
    for name, recipe in recipes.items():
        epochs = recipe.training.epochs
        predicted = np.zeros((epochs, len(train)), dtype=np.int64)
        for j, (fit_rows, score_rows) in enumerate(splits):
            s = unit_seed(seed, f"{fold}/inner{j}/{name}")
            torch.manual_seed(s)
            model = recipe.model.build(len(train.classes))
            scored = train.subset(score_rows)

            def record(epoch: int, m, rows=score_rows, scored=scored) -> None:
                proba = predict_proba(m, scored, recipe.training.eval_batch_size, tta=protocol.tta)
                predicted[epoch - 1, rows] = proba.argmax(axis=1)

            fit(model, train.subset(fit_rows), recipe.training, torch.Generator().manual_seed(s), on_epoch_end=record)
        curves[name] = [round(pooled_uf1(labels, predicted[e], len(train.classes)), 6) for e in range(epochs)]
    best = max(((name, e + 1) for name in recipes for e in range(len(curves[name]))),
               key=lambda c: (curves[c[0]][c[1] - 1], c[1], -list(recipes).index(c[0])))
    return Choice(best[0], best[1], curves, k, int(train.table["subject_id"].nunique()))

"""Ensembles across architectures inside each unit (``protocol.members``), weighted equally or by inner stacking.

Each member is a recipe (a model and its training: ``protocol.members: {name: [model.name=..., training.*=...]}``).
In a (seed, fold) unit every member trains on the fold's training rows with the unit's member-0 seed, exactly as
a single-model run of that member's config with the same seed would (:func:`merkit.training.seeds.member_seed`),
and predicts the held-out rows. The ensemble's class probabilities are a weighted mean of the members':

* ``protocol.member_weights: equal``: weight 1/M each, fixed in advance.
* ``inner`` (stacking): the fold's training subjects are split into ``protocol.inner_folds`` subject-disjoint inner
  folds (:func:`merkit.training.selection.inner_splits`); each member is trained on k - 1 of them and predicts the
  k-th, which gives out-of-fold class probabilities for every training row; the weights on the simplex that
  minimise the mean negative log-likelihood of the weighted mean of those probabilities are found with
  :func:`scipy.optimize.minimize` (SLSQP, from equal weights). The outer test subject's rows never reach this
  step: :func:`inner_weights` refuses a feature set that holds any of them.

Cost: M member models per unit, plus k inner models per member with ``inner``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from merkit.errors import LeakageError
from merkit.features import FeatureSet
from merkit.training.seeds import member_seed, unit_seed


@dataclass
class MemberResult:
    """What the members of one unit computed: the ensemble's ``proba`` (N_test, K) float64, each member's
    ``states`` (prefixed ``<member>.``), the ``choice`` record (weights and how they were chosen) and the device."""

    proba: np.ndarray
    states: dict[str, torch.Tensor]
    choice: dict
    device: str


def simplex_weights(probas: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
    """(M,) weights >= 0 summing to 1 that minimise the mean negative log-likelihood of ``labels`` under
    ``sum_m w_m probas[m]`` ((N, K) each); equal weights when M == 1 or when the optimiser fails."""
    from scipy.optimize import minimize

    m = len(probas)
    if m == 1:
        return np.ones(1)
    picked = np.stack([p[np.arange(len(labels)), labels] for p in probas], axis=1)  # (N, M)

    def nll(w: np.ndarray) -> float:
        return float(-np.mean(np.log(np.clip(picked @ w, 1e-12, None))))

    start = np.full(m, 1.0 / m)
    result = minimize(nll, start, method="SLSQP", bounds=[(0.0, 1.0)] * m,
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}])
    if not result.success or not np.isfinite(result.x).all():
        return start
    w = np.clip(result.x, 0.0, None)
    return w / w.sum()


def inner_weights(protocol, train: FeatureSet, seed: int, fold: str, forbidden: set[str]) -> tuple[np.ndarray, dict]:
    """The members' stacking weights, from out-of-fold predictions on ``train``'s inner folds (module docstring).

    Args:
        protocol: the run's :class:`merkit.config.Protocol` (``members``, ``inner_folds``, ``tta``).
        train: the outer fold's training rows only.
        forbidden: the outer fold's test sample ids.

    Returns:
        ``(weights (M,), record)``; the record holds each member's inner negative log-likelihood and the
        ensemble's, at equal and at the chosen weights.

    Raises:
        LeakageError: ``train`` holds one of ``forbidden``'s samples.
    """
    from merkit.training.engine import fit, predict_proba
    from merkit.training.selection import inner_splits

    leaked = forbidden & set(train.table["sample_id"])
    if leaked:
        raise LeakageError(f"member weighting of fold {fold} was given test samples {sorted(leaked)[:5]}")
    splits = inner_splits(train, protocol.inner_folds, unit_seed(seed, f"{fold}/inner"))
    labels = train.labels.numpy()
    out_of_fold = []
    for recipe in protocol.members:
        proba = np.zeros((len(train), len(train.classes)))
        for j, (fit_rows, score_rows) in enumerate(splits):
            s = unit_seed(seed, f"{fold}/inner{j}/{recipe.name}")
            torch.manual_seed(s)
            model = recipe.model.build(len(train.classes))
            fit(model, train.subset(fit_rows), recipe.training, torch.Generator().manual_seed(s))
            proba[score_rows] = predict_proba(model, train.subset(score_rows), recipe.training.eval_batch_size,
                                              tta=protocol.tta)
        out_of_fold.append(proba)
    weights = simplex_weights(out_of_fold, labels)

    def nll(p: np.ndarray) -> float:
        return round(float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)))), 6)

    equal = np.mean(out_of_fold, axis=0)
    chosen = np.tensordot(weights, np.stack(out_of_fold), axes=1)
    record = {"inner_nll": {r.name: nll(p) for r, p in zip(protocol.members, out_of_fold)},
              "inner_nll_equal": nll(equal), "inner_nll_chosen": nll(chosen), "inner_folds": protocol.inner_folds}
    return weights, record


def train_members(protocol, train: FeatureSet, test: FeatureSet, seed: int, fold: str) -> MemberResult:
    """Train every member on ``train`` and return the weighted mean of their class probabilities on ``test``
    (module docstring); the weights are equal, or chosen on ``train``'s inner folds (:func:`inner_weights`).

    Raises:
        LeakageError: inner weighting was handed a test sample (cannot happen from the runner; asserted).
    """
    from merkit.training.engine import describe_device, fit, module_device, predict_proba

    record: dict = {"weighting": protocol.member_weights}
    if protocol.member_weights == "inner":
        weights, inner = inner_weights(protocol, train, seed, fold, set(test.table["sample_id"]))
        record.update(inner)
    else:
        weights = np.full(len(protocol.members), 1.0 / len(protocol.members))
    s = member_seed(seed, fold, 0)
    states, probas, device = {}, [], "cpu"
    for recipe in protocol.members:
        torch.manual_seed(s)
        model = recipe.model.build(len(train.classes))
        fit(model, train, recipe.training, torch.Generator().manual_seed(s))
        if protocol.save_checkpoints:
            from merkit.training.engine import cpu_state_dict

            states.update({f"{recipe.name}.{k}": v for k, v in cpu_state_dict(model).items()})
        probas.append(predict_proba(model, test, recipe.training.eval_batch_size, tta=protocol.tta))
        device = describe_device(module_device(model))
    # equal weights: the plain mean, as protocol.ensemble and merkit ensemble average
    proba = np.mean(probas, axis=0) if protocol.member_weights == "equal" else \
        np.tensordot(weights, np.stack(probas), axes=1)
    epochs = max(r.training.epochs for r in protocol.members)
    record.update(recipe="members", epochs=epochs,
                  weights={r.name: round(float(w), 6) for r, w in zip(protocol.members, weights)})
    return MemberResult(proba, states, record, device)

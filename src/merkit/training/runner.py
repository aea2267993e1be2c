"""Runs leave-one-subject-out units of work: (config, fold, seed) -> predictions, resumably, sequentially or on Ray.

Each unit trains one model from scratch on every subject but one and predicts the held-out subject. A finished
unit is written at once to ``<run>/units/seed<S>/<fold>.csv`` (atomically), so a killed run resumes from its
finished folds and loses nothing. Units are deterministic functions of (config, data, fold, seed): the seed of a
unit is derived from the run seed and the fold's subject, and the number of intra-op threads is fixed by
``protocol.threads_per_fold``, so running them in Ray worker processes gives the same predictions as running them
in sequence. That holds on the CPU of one machine. Another host can round differently (its CPU model and vector
instructions, or the versions of torch and numpy), and on CUDA (``training.device``) units are not
bit-reproducible at all, so ``run.json`` records which devices and which machines trained a folder's units.
Checkpoints are always written from CPU tensors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from merkit.config import RunConfig, config_from_dict
from merkit.errors import ConfigError, DataError, Diagnostics, Where
from merkit.files import write_atomic, write_json
from merkit.features import FeatureSet
from merkit.models import build_model
from merkit.training.engine import (cpu_state_dict, describe_device, describe_environment, fit, predict_proba,
                                    resolve_device)
from merkit.training.loso import Fold, check_fold, loso_folds

PREDICTION_COLUMNS = ("sample_id", "dataset", "subject", "subject_id", "sample", "fold", "seed", "epoch",
                      "label", "prediction")


def unit_seed(seed: int, subject_id: str) -> int:
    """The seed of one (seed, fold) unit: independent of fold order and of which process runs it."""
    return int(hashlib.sha256(f"{seed}:{subject_id}".encode()).hexdigest()[:8], 16)


def prediction_frame(data: FeatureSet, proba: np.ndarray, fold: str, seed: int, epoch: int) -> pd.DataFrame:
    """The predictions table for ``data``'s rows: ids, fold, seed, epoch, label, prediction, ``prob_<class>``."""
    t = data.table
    values = {c: t[c] for c in ("sample_id", "dataset", "subject", "subject_id", "sample")}
    values.update(fold=fold, seed=seed, epoch=epoch, label=t["label"].astype(int),
                  prediction=proba.argmax(axis=1).astype(int))
    df = pd.DataFrame({c: values[c] for c in PREDICTION_COLUMNS})  # the constant fixes names and order
    for k, name in enumerate(data.classes):
        df[f"prob_{name}"] = proba[:, k]
    return df


def run_unit(config: RunConfig, data: FeatureSet, fold: Fold, seed: int,
             checkpoint: Path | None = None, curve: Path | None = None) -> pd.DataFrame:
    """Train on ``fold.train_index``, predict ``fold.test_index``; return the fold's predictions table.

    With ``protocol.selection == "last"`` the model after the last epoch predicts. With ``"paper"`` the test
    subject is scored after every epoch and the epoch with the best test accuracy is kept (the earliest on ties):
    the optimistic selection of the papers' code, labelled as such in every report.

    ``curve``: with ``protocol.record_epochs``, the held-out subject's predictions after every epoch (the
    predictions table, one block per epoch) are written there. They are a diagnostic: the returned predictions
    are the same with or without them (scoring runs in eval mode under ``no_grad`` and draws no random numbers).

    Raises:
        LeakageError: the fold's train and test rows share a subject or sample.
    """
    check_fold(data.table, fold)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.protocol.threads_per_fold)
    try:
        s = unit_seed(seed, fold.subject_id)
        torch.manual_seed(s)
        generator = torch.Generator().manual_seed(s)
        train, test = data.subset(fold.train_index), data.subset(fold.test_index)
        model = build_model(config.model.name, len(data.classes), config.model.preset, **config.model.params)
        best: dict = {}
        epochs: list[pd.DataFrame] = []
        paper = config.protocol.selection == "paper"
        record = config.protocol.record_epochs and curve is not None

        def score_test(epoch: int, m) -> None:
            proba = predict_proba(m, test, config.training.eval_batch_size)
            if record:
                epochs.append(prediction_frame(test, proba, fold.subject_id, seed, epoch))
            acc = float((proba.argmax(1) == test.labels.numpy()).mean())
            if paper and (not best or acc > best["acc"]):
                best.update(acc=acc, epoch=epoch, proba=proba)

        fit(model, train, config.training, generator, on_epoch_end=score_test if paper or record else None)
        if record:
            _write_atomic(pd.concat(epochs, ignore_index=True), curve)
        if paper:
            proba, epoch = best["proba"], best["epoch"]
        else:
            proba, epoch = predict_proba(model, test, config.training.eval_batch_size), config.training.epochs
        if checkpoint is not None:
            from safetensors.torch import save_file

            state = cpu_state_dict(model)
            write_atomic(checkpoint, lambda p: save_file(state, str(p)))
        return prediction_frame(test, proba, fold.subject_id, seed, epoch)
    finally:
        torch.set_num_threads(previous_threads)


def _run_unit_remote(config_dict: dict, data: FeatureSet, fold: Fold, seed: int, checkpoint: str | None,
                     curve: str | None):
    return run_unit(config_from_dict(config_dict), data, fold, seed, Path(checkpoint) if checkpoint else None,
                    Path(curve) if curve else None)


def _write_atomic(df: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda p: df.to_csv(p, index=False))


@dataclass
class UnitPlan:
    seed: int
    fold: Fold
    path: Path
    checkpoint: Path | None
    curve: Path | None = None


def plan_units(config: RunConfig, data: FeatureSet, run_dir: Path) -> list[UnitPlan]:
    """One unit per (seed, fold), each with its own files.

    Raises:
        LeakageError: a fold is not subject-disjoint (:func:`merkit.training.loso.check_fold`).
        DataError: two units would write the same file (cannot happen with validated ids; asserted all the same,
            since a collision would silently merge two folds' predictions).
    """
    folds = loso_folds(data.table)
    plans = []
    for seed in config.protocol.seeds:
        for fold in folds:
            unit_dir = run_dir / "units" / f"seed{seed}"
            ckpt = run_dir / "checkpoints" / f"seed{seed}" / f"{fold.slug}.safetensors"
            curve = run_dir / "epochs" / f"seed{seed}" / f"{fold.slug}.csv"
            plans.append(UnitPlan(seed, fold, unit_dir / f"{fold.slug}.csv",
                                  ckpt if config.protocol.save_checkpoints else None,
                                  curve if config.protocol.record_epochs else None))
    paths = [p.path for p in plans]
    if len(set(paths)) != len(paths):
        clash = sorted({str(p) for p in paths if paths.count(p) > 1})
        raise DataError(f"two LOSO units would write the same file: {clash[:3]}")
    return plans


def unit_problem(path: Path, plan: UnitPlan, data: FeatureSet, config: RunConfig) -> str | None:
    """Why the unit file at ``path`` cannot be trusted for ``plan``, or ``None`` when it can.

    A unit file is trusted when it parses, has the prediction columns and one ``prob_<class>`` per class, holds
    exactly the fold's test samples once each with their labels, the plan's seed and fold, finite probabilities
    that sum to 1 with the prediction at their maximum, and an epoch in ``1..training.epochs``; and when the fold
    checkpoint and the learning curve that the run keeps (``protocol.save_checkpoints``, ``record_epochs``) are
    there and readable.
    """
    try:
        df = pd.read_csv(path, dtype={"subject": str, "sample": str, "sample_id": str, "fold": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        return f"it does not parse ({str(error).splitlines()[0]})"
    probs = [f"prob_{c}" for c in data.classes]
    missing = [c for c in (*PREDICTION_COLUMNS, *probs) if c not in df.columns]
    if missing:
        return f"it lacks the columns {missing}"
    test = data.table.iloc[plan.fold.test_index]
    expected = dict(zip(test["sample_id"], test["label"].astype(int)))
    if len(df) != len(expected) or set(df["sample_id"]) != set(expected) or df["sample_id"].duplicated().any():
        return f"it holds {len(df)} rows for samples other than the fold's {len(expected)}"
    if (df["seed"] != plan.seed).any() or (df["fold"] != plan.fold.subject_id).any():
        return f"its seed or fold is not seed {plan.seed}, fold {plan.fold.subject_id}"
    if [expected[s] for s in df["sample_id"]] != df["label"].astype(int).tolist():
        return "its labels differ from the data's"
    values = df[probs].to_numpy(dtype=float)
    if not np.isfinite(values).all() or not np.allclose(values.sum(axis=1), 1.0, atol=1e-4):
        return "its probabilities are not finite or do not sum to 1"
    if (values.argmax(axis=1) != df["prediction"].to_numpy()).any():
        return "its predictions are not the most probable classes"
    if not df["epoch"].between(1, config.training.epochs).all():
        return f"its epochs lie outside 1..{config.training.epochs}"
    if plan.checkpoint is not None and not _readable_weights(plan.checkpoint):
        return f"its fold checkpoint {plan.checkpoint} is missing or damaged"
    if plan.curve is not None:
        try:
            curve = pd.read_csv(plan.curve)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            return f"its learning curve {plan.curve} is missing or damaged"
        if sorted(set(curve.get("epoch", []))) != list(range(1, config.training.epochs + 1)):
            return f"its learning curve {plan.curve} does not hold every epoch"
    return None


def _readable_weights(path: Path) -> bool:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return len(list(handle.keys())) > 0
    except (SafetensorError, OSError):
        return False


def check_run_dir(config: RunConfig, data: FeatureSet, run_dir: Path) -> None:
    """Create or verify ``run.json``, which ties a run folder to one config and one dataset.

    ``run.json`` also lists under ``devices`` every device that trained units in the folder (``cpu``, or
    ``cuda:0 (<GPU name>)``), and under ``environments`` every host and software stack that did
    (:func:`merkit.training.engine.describe_environment`). A run resumed on another device or machine adds its
    own, so a folder whose units came from two places says so.

    Raises:
        ConfigError: the folder already holds units of a different config or dataset; resuming would mix them,
            or ``training.device`` is unavailable here.
    """
    stamp = {"result_hash": config.result_hash(), "data_fingerprint": data.fingerprint()}
    here = {"devices": describe_device(resolve_device(config.training.device)),
            "environments": describe_environment()}
    path = run_dir / "run.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path} is damaged ({error}); it ties the folder to one config and dataset, so the "
                              "folder cannot be resumed: delete the folder (or choose another --out) and run "
                              "again") from error
        if not isinstance(old, dict):
            raise ConfigError(f"{path} is damaged (not a JSON object); delete the folder and run again")
        if {k: old.get(k) for k in stamp} != stamp:
            raise ConfigError(
                f"{run_dir} holds results of another config or dataset ({old} vs {stamp}); "
                "choose another --out, or delete the folder to start over")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        old = stamp
    record = dict(old)
    for key, value in here.items():
        if value not in record.get(key, []):
            record[key] = [*record.get(key, []), value]
    if record != old:
        write_json(path, record)


def run_provenance(run_dir: str | Path, key: str = "devices") -> list[str]:
    """What trained the units of ``run_dir``, from ``run.json``: ``key="devices"`` (default) lists the devices,
    ``key="environments"`` the machines and software stacks; empty for folders written before merkit recorded
    them."""
    path = Path(run_dir) / "run.json"
    return list(json.loads(path.read_text()).get(key, [])) if path.is_file() else []


def gpus_per_unit(config: RunConfig) -> float:
    """The GPU share a Ray unit requests: 0 unless ``training.device`` resolves to CUDA; then
    ``protocol.gpus_per_fold``, or ``1 / workers`` when that is 0 (the workers share one GPU)."""
    if resolve_device(config.training.device).type != "cuda":
        return 0.0
    return config.protocol.gpus_per_fold or 1.0 / config.protocol.workers


def run_loso(config: RunConfig, data: FeatureSet, run_dir: str | Path,
             on_unit_done: Callable[[UnitPlan], None] | None = None,
             diagnostics: Diagnostics | None = None) -> pd.DataFrame:
    """Run every (seed, fold) unit not yet finished in ``run_dir`` and return all predictions.

    Units run sequentially when ``protocol.workers == 1``, else in that many Ray worker processes. Finished units
    already in ``run_dir`` are reused after :func:`check_run_dir`, each only when :func:`unit_problem` finds
    nothing wrong with it; a unit file that fails is recomputed, with a counted warning (``unit-recomputed``) in
    ``diagnostics`` that names it.

    Returns:
        The predictions table (:data:`PREDICTION_COLUMNS` plus ``prob_<class>``), sorted by seed and sample id.

    Raises:
        ConfigError: ``run_dir`` holds another config's or dataset's run, or a damaged ``run.json``.
    """
    run_dir = Path(run_dir)
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    check_run_dir(config, data, run_dir)
    plans = plan_units(config, data, run_dir)
    todo = []
    for plan in plans:
        if not plan.path.is_file():
            todo.append(plan)
            continue
        problem = unit_problem(plan.path, plan, data, config)
        if problem is not None:
            diagnostics.warn("unit-recomputed", f"{plan.path} was not trusted: {problem}",
                             Where(sample=f"seed {plan.seed}, fold {plan.fold.subject_id}"))
            todo.append(plan)
    pending = {p.path for p in todo}
    for plan in plans:
        if plan.path not in pending and on_unit_done is not None:
            on_unit_done(plan)
    if config.protocol.workers <= 1:
        for plan in todo:
            df = run_unit(config, data, plan.fold, plan.seed, plan.checkpoint, plan.curve)
            _write_atomic(df, plan.path)
            if on_unit_done is not None:
                on_unit_done(plan)
    elif todo:
        _run_on_ray(config, data, todo, on_unit_done)
    frames = [pd.read_csv(p.path, dtype={"subject": str, "sample": str}) for p in plans]
    preds = pd.concat(frames, ignore_index=True)
    return preds.sort_values(["seed", "sample_id"], kind="stable").reset_index(drop=True)


def _run_on_ray(config: RunConfig, data: FeatureSet, todo: list[UnitPlan],
                on_unit_done: Callable[[UnitPlan], None] | None) -> None:
    from merkit.training.cluster import ray_session

    with ray_session(config.protocol.workers * config.protocol.threads_per_fold):
        import ray

        # With a GPU share Ray sets each worker's CUDA_VISIBLE_DEVICES, so "cuda" there is the GPU Ray assigned.
        remote = ray.remote(num_cpus=config.protocol.threads_per_fold,
                            num_gpus=gpus_per_unit(config))(_run_unit_remote)
        data_ref = ray.put(data)
        config_dict = config.to_dict()
        pending = {
            remote.remote(config_dict, data_ref, p.fold, p.seed, str(p.checkpoint) if p.checkpoint else None,
                          str(p.curve) if p.curve else None): p
            for p in todo
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            plan = pending.pop(done[0])
            _write_atomic(ray.get(done[0]), plan.path)
            if on_unit_done is not None:
                on_unit_done(plan)

"""Runs the units of an evaluation: (protocol, fold, seed) -> predictions, resumably, in this process or on Ray.

Each unit trains on a fold's training rows and predicts its held-out rows (one subject under LOSO, one dataset
under LODO; :mod:`merkit.training.loso`). :func:`compute_unit` is pure: it returns the predictions, the mean
training loss of every epoch and, as the run asks, the fold's weights, its learning curve and its inner-selection
choice, and writes nothing. The driver alone
writes them into the run folder, each file atomically and the unit's predictions last, so a killed run, whether
its driver or a worker died, resumes from the finished units and loses nothing (:func:`run_loso`). Units are
deterministic functions of (protocol, data, fold, seed): the unit's seed comes from the run seed and the fold's
name, and ``protocol.threads_per_fold`` fixes the intra-op threads, so Ray workers give the predictions of a
sequential run. That holds on the CPU of one machine; another host can round differently, and CUDA units are not
bit-reproducible, so ``run.json`` records the devices, machines and Ray nodes that trained a folder's units.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from merkit.config import Plan, Protocol
from merkit.errors import DataError, Diagnostics, UnitError, Where
from merkit.features import FeatureSet
from merkit.files import text_writer, write_atomic, write_json
from merkit.runfolder import RunFolder
from merkit.training.engine import (cpu_state_dict, describe_device, describe_environment, fit, module_device,
                                    predict_proba, resolve_device)
from merkit.training.loso import Fold, check_fold, make_folds
from merkit.training.check import check_model_inputs
from merkit.training.seeds import member_seed
from merkit.training.selection import check_inner_folds

PREDICTION_COLUMNS = ("sample_id", "dataset", "subject", "subject_id", "sample", "fold", "seed", "epoch",
                      "label", "prediction")
#: The columns of a unit's training-loss file (``losses/seed<S>/<fold>.csv``): one row per member model and epoch.
LOSS_COLUMNS = ("seed", "fold", "member", "epoch", "train_loss")


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


@dataclass
class UnitResult:
    """What one unit computed; the driver writes it (:func:`write_unit`).

    Attributes:
        predictions: the held-out rows' predictions table (:data:`PREDICTION_COLUMNS` + ``prob_<class>``).
        weights: the trained weights as safetensors bytes (with ``protocol.ensemble`` K > 1, member k's tensors
            are prefixed ``member<k>.``), or ``None`` when the run keeps no checkpoints.
        curve: the held-out rows' predictions after every epoch (``protocol.record_epochs``), or ``None``.
        losses: the mean training loss of every epoch of every member model (:data:`LOSS_COLUMNS`; see
            :func:`merkit.training.engine.fit`'s ``on_train_loss``), or ``None``.
        choice: what inner selection chose (``protocol.selection: inner``), or ``None``.
        device, environment: where the unit trained (:func:`merkit.training.engine.describe_device`,
            :func:`~merkit.training.engine.describe_environment`).
    """

    predictions: pd.DataFrame
    weights: bytes | None = None
    curve: pd.DataFrame | None = None
    choice: dict | None = None
    device: str = "cpu"
    environment: str = ""
    losses: pd.DataFrame | None = None


def compute_unit(protocol: Protocol, data: FeatureSet, fold: Fold, seed: int, threads: int = 1) -> UnitResult:
    """Train on ``fold.train_index``, predict ``fold.test_index``; write nothing. ``threads``: torch's intra-op
    threads for the unit (``protocol.threads_per_fold``).

    Selection (``protocol.selection``): ``last`` predicts with the model after the last epoch; ``inner`` first
    chooses the recipe and epoch count on the training subjects alone (:func:`merkit.training.selection.choose`),
    then trains on all of them with that recipe and stops at that epoch; ``paper`` scores the test subject after
    every epoch and keeps the epoch with the best test accuracy (the earliest on ties): the optimistic selection of
    the papers' code, labelled as such in every report. With ``protocol.ensemble`` K the unit trains K models
    (:func:`member_seed`) and averages their class probabilities. With ``protocol.tta: flip`` every prediction
    averages the input's and its mirror's class probabilities (:func:`merkit.training.engine.predict_proba`).

    The test rows enter only the final prediction (and, under ``paper`` or ``record_epochs``, the per-epoch
    scoring that those options exist for); training and inner selection see the training rows alone.

    Raises:
        LeakageError: the fold's train and test rows share a subject or sample.
    """
    check_fold(data.table, fold)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if protocol.members:
            return _members_unit(protocol, data, fold, seed)
        train = data.subset(fold.train_index)
        test_rows = lambda: data.subset(fold.test_index)  # noqa: E731  built only where the test is scored
        recipe, stop, choice = protocol.own, None, None
        if protocol.selection == "inner":
            from merkit.training.selection import choose

            chosen = choose(protocol, train, seed, fold.name, set(data.table["sample_id"].iloc[fold.test_index]))
            recipe = protocol.recipe(chosen.recipe)
            stop, choice = chosen.epochs, chosen.to_dict()
        paper, record = protocol.selection == "paper", protocol.record_epochs
        test = test_rows() if paper or record else None
        epochs: list[pd.DataFrame] = []
        best: dict = {}

        def score_test(epoch: int, m) -> None:
            proba = predict_proba(m, test, recipe.training.eval_batch_size, tta=protocol.tta)
            if record:
                epochs.append(prediction_frame(test, proba, fold.name, seed, epoch))
            acc = float((proba.argmax(1) == test.labels.numpy()).mean())
            if paper and (not best or acc > best["acc"]):
                best.update(acc=acc, epoch=epoch, proba=proba)

        states, probas, losses = {}, [], []
        for member in range(protocol.ensemble):
            s = member_seed(seed, fold.name, member)
            torch.manual_seed(s)
            model = recipe.model.build(len(data.classes))
            fit(model, train, recipe.training, torch.Generator().manual_seed(s),
                on_epoch_end=score_test if (paper or record) and member == 0 else None, stop_after=stop,
                on_train_loss=lambda e, loss, m=member: losses.append((seed, fold.name, m, e, loss)))
            if protocol.save_checkpoints:
                prefix = f"member{member}." if protocol.ensemble > 1 else ""
                states.update({prefix + k: v for k, v in cpu_state_dict(model).items()})
            if not paper:
                probas.append(predict_proba(model, test if test is not None else test_rows(),
                                            recipe.training.eval_batch_size, tta=protocol.tta))
            device = describe_device(module_device(model))
        if paper:
            proba, epoch = best["proba"], best["epoch"]
        else:
            proba, epoch = np.mean(probas, axis=0), stop or recipe.training.epochs
        weights = None
        if states:
            from safetensors.torch import save

            weights = save(states)
        return UnitResult(prediction_frame(test if test is not None else test_rows(), proba, fold.name, seed,
                                           epoch),
                          weights, pd.concat(epochs, ignore_index=True) if record else None, choice, device,
                          describe_environment(), pd.DataFrame(losses, columns=list(LOSS_COLUMNS)))
    finally:
        torch.set_num_threads(previous_threads)


def _members_unit(protocol: Protocol, data: FeatureSet, fold: Fold, seed: int) -> UnitResult:
    """:func:`compute_unit` for an ensemble across architectures (``protocol.members``,
    :func:`merkit.training.members.train_members`): the held-out rows enter only the members' final predictions."""
    from merkit.training.members import train_members

    test = data.subset(fold.test_index)
    result = train_members(protocol, data.subset(fold.train_index), test, seed, fold.name)
    weights = None
    if result.states:
        from safetensors.torch import save

        weights = save(result.states)
    return UnitResult(prediction_frame(test, result.proba, fold.name, seed, result.choice["epochs"]), weights, None,
                      result.choice, result.device, describe_environment())


def run_unit(protocol: Protocol, data: FeatureSet, fold: Fold, seed: int, threads: int = 1) -> pd.DataFrame:
    """The predictions table of one unit (:func:`compute_unit` without the rest)."""
    return compute_unit(protocol, data, fold, seed, threads).predictions


@dataclass
class UnitPlan:
    """One (seed, fold) unit and its files: ``path`` (the predictions, written last), and the checkpoint, curve
    and choice files the run keeps (``None`` when it keeps none), and its training loss (``losses``, always kept;
    a unit finished before merkit recorded it has none, and is trusted all the same)."""

    seed: int
    fold: Fold
    path: Path
    checkpoint: Path | None
    curve: Path | None = None
    choice: Path | None = None
    losses: Path | None = None


def plan_units(protocol: Protocol, data: FeatureSet, run_dir: Path) -> list[UnitPlan]:
    """One unit per (seed, fold), each with its own files.

    Raises:
        ConfigError: the split cannot be made from the data (e.g. ``lodo`` with one dataset), or inner selection
            has fewer training subjects than ``protocol.inner_folds`` in a fold
            (:func:`merkit.training.selection.check_inner_folds`).
        DataError: LOSO on one subject, or a fold with an empty side (:func:`merkit.training.loso.check_fold`); the
            data lacks an input the model takes or has one of another shape than its record says
            (:func:`merkit.training.check.check_model_inputs`).
        LeakageError: a fold is not subject-disjoint (:func:`merkit.training.loso.check_fold`); a ``model.init``
            trained on a dataset of the data (:func:`merkit.pretrained.check_start`).
        DataError: two units would write the same file (cannot happen with validated ids; asserted all the same,
            since a collision would silently merge two folds' predictions).
    """
    folds = make_folds(data.table, protocol.split, protocol.train_on, protocol.test_on)
    if protocol.selection == "inner":
        check_inner_folds(data.table, folds, protocol.inner_folds)
    if protocol.member_weights == "inner":
        check_inner_folds(data.table, folds, protocol.inner_folds)
    for recipe in protocol.members or (protocol.own,):
        check_model_inputs(recipe.model, data)
    folder = RunFolder(run_dir)
    keep = {RunFolder.CHECKPOINTS: protocol.save_checkpoints, RunFolder.EPOCHS: protocol.record_epochs,
            RunFolder.CHOICES: protocol.selection == "inner" or bool(protocol.members)}
    plans = []
    for seed in protocol.seeds:
        for fold in folds:
            files = {part: folder.unit_file(part, seed, fold.slug) if wanted else None for part, wanted in keep.items()}
            plans.append(UnitPlan(seed, fold, folder.unit_file(RunFolder.UNITS, seed, fold.slug),
                                  files[RunFolder.CHECKPOINTS], files[RunFolder.EPOCHS], files[RunFolder.CHOICES],
                                  folder.unit_file(RunFolder.LOSSES, seed, fold.slug)))
    paths = [p.path for p in plans]
    if len(set(paths)) != len(paths):
        clash = sorted({str(p) for p in paths if paths.count(p) > 1})
        raise DataError(f"two LOSO units would write the same file: {clash[:3]}")
    return plans


def unit_problem(path: Path, plan: UnitPlan, data: FeatureSet, protocol: Protocol) -> str | None:
    """Why the unit file at ``path`` cannot be trusted for ``plan``, or ``None`` when it can.

    A unit file is trusted when it parses, has the prediction columns and one ``prob_<class>`` per class, holds
    exactly the fold's test samples once each with their labels, the plan's seed and fold, finite probabilities
    that sum to 1 with the prediction at their maximum, and an epoch in ``1..training.epochs``; and when the fold
    checkpoint and the learning curve that the run keeps (``protocol.save_checkpoints``, ``record_epochs``) are
    there and readable. Its training-loss file may be absent (units finished before merkit recorded the loss), but
    one that is there must hold every epoch the unit trained, for every member model (:func:`_loss_problem`).
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
    if (df["seed"] != plan.seed).any() or (df["fold"] != plan.fold.name).any():
        return f"its seed or fold is not seed {plan.seed}, fold {plan.fold.name}"
    if [expected[s] for s in df["sample_id"]] != df["label"].astype(int).tolist():
        return "its labels differ from the data's"
    values = df[probs].to_numpy(dtype=float)
    if not np.isfinite(values).all() or not np.allclose(values.sum(axis=1), 1.0, atol=1e-4):
        return "its probabilities are not finite or do not sum to 1"
    if (values.argmax(axis=1) != df["prediction"].to_numpy()).any():
        return "its predictions are not the most probable classes"
    longest = protocol.longest_epochs
    if not df["epoch"].between(1, longest).all():
        return f"its epochs lie outside 1..{longest}"
    if plan.checkpoint is not None and not _readable_weights(plan.checkpoint):
        return f"its fold checkpoint {plan.checkpoint} is missing or damaged"
    if plan.choice is not None:
        try:
            chosen = json.loads(plan.choice.read_text())
        except (OSError, ValueError):
            return f"its inner-selection choice {plan.choice} is missing or damaged"
        if not isinstance(chosen, dict) or chosen.get("epochs") not in set(df["epoch"]):
            return f"its inner-selection choice {plan.choice} does not match its epochs"
    if plan.curve is not None:
        try:
            curve = pd.read_csv(plan.curve)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            return f"its learning curve {plan.curve} is missing or damaged"
        if sorted(set(curve.get("epoch", []))) != list(range(1, protocol.own.training.epochs + 1)):
            return f"its learning curve {plan.curve} does not hold every epoch"
    trained = int(df["epoch"].iloc[0]) if protocol.selection == "inner" else protocol.own.training.epochs
    return _loss_problem(plan.losses, protocol, trained)


def _loss_problem(path: Path | None, protocol: Protocol, epochs: int) -> str | None:
    """Why a unit's training-loss file cannot be trusted, or ``None`` (also when there is none): it must parse, with
    :data:`LOSS_COLUMNS`, and hold one row for each member model and each of the ``epochs`` epochs it trained."""
    if path is None or not path.is_file():
        return None
    try:
        losses = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return f"its training loss {path} is damaged"
    if list(losses.columns) != list(LOSS_COLUMNS):
        return f"its training loss {path} lacks the columns {list(LOSS_COLUMNS)}"
    expected = {(m, e) for m in range(protocol.ensemble) for e in range(1, epochs + 1)}
    found = list(zip(losses["member"], losses["epoch"]))
    if len(found) != len(expected) or set(found) != expected:
        return f"its training loss {path} does not hold every epoch of every member"
    return None


def _readable_weights(path: Path) -> bool:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return len(list(handle.keys())) > 0
    except (SafetensorError, OSError):
        return False


def write_unit(plan: UnitPlan, result: UnitResult, run_dir: Path, node: str | None = None) -> None:
    """Write one unit's files into the run folder, each atomically, its predictions last; add where it trained to
    ``run.json``.

    Raises:
        OutputError: the disk refused a write.
    """
    if plan.checkpoint is not None and result.weights is not None:
        write_atomic(plan.checkpoint, lambda p: p.write_bytes(result.weights))
    if plan.curve is not None and result.curve is not None:
        write_atomic(plan.curve, lambda p: result.curve.to_csv(p, index=False))
    if plan.choice is not None and result.choice is not None:
        write_json(plan.choice, {"seed": plan.seed, "fold": plan.fold.name, **result.choice})
    if plan.losses is not None and result.losses is not None:
        write_atomic(plan.losses, lambda p: result.losses.to_csv(p, index=False))
    RunFolder(run_dir).add_provenance(devices=result.device, environments=result.environment, nodes=node)
    write_atomic(plan.path, lambda p: result.predictions.to_csv(p, index=False))


def run_loso(plan: Plan, data: FeatureSet, run_dir: str | Path,
             on_unit_done: Callable[[UnitPlan], None] | None = None,
             diagnostics: Diagnostics | None = None, force: bool = False,
             on_units_planned: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Run every (seed, fold) unit not yet finished in ``run_dir`` and return all predictions.

    Everything is checked before anything is written (the device, the split, the model's inputs and the weights
    it starts from (:func:`merkit.training.check.check_model_inputs`), and the folder, from the config's
    ``result_hash`` and the data's content fingerprint: :meth:`merkit.runfolder.RunFolder.check_run`);
    then the folder gets its stamp (``run.json``, with what data the run saw: :meth:`merkit.features.FeatureSet.data_record`)
    and ``config.yaml``. Units run on the executor of
    :func:`merkit.cluster.executor`: in this process when ``protocol.workers == 1`` and no cluster is named, else on
    Ray (a local instance with that many workers, or the cluster at ``protocol.address`` / ``$RAY_ADDRESS``).
    Finished units already in ``run_dir`` are reused, each only when :func:`unit_problem` finds nothing wrong with
    it; a unit file that fails is recomputed, with a counted warning (``unit-recomputed``) in ``diagnostics`` that
    names it. A folder stamped before content fingerprints is resumed with a counted warning
    (``run-stamp-upgraded``); ``force`` replaces finished units of another config or of changed data
    (``units-replaced``). ``on_units_planned`` receives the number of units once they are planned (a progress
    bar's total); ``on_unit_done`` each unit as it finishes or is found finished.

    Returns:
        The predictions table (:data:`PREDICTION_COLUMNS` plus ``prob_<class>``), sorted by seed and sample id.

    Raises:
        ConfigError: ``run_dir`` holds another config's run or one on other data (unless ``force``), is not a
            merkit run folder, or has a damaged ``run.json``; the device is unavailable; a ``model.init`` of other
            classes.
        LeakageError: a ``model.init`` trained on a dataset the run evaluates.
        OutputError: the disk refused a write.
        UnitError: units that failed for good on Ray (the finished ones are saved).
    """
    run_dir = Path(run_dir)
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    if plan.resources.in_process:
        resolve_device(plan.resources.device)  # an unavailable device fails before anything is written
    units = plan_units(plan.protocol, data, run_dir)
    if on_units_planned is not None:
        on_units_planned(len(units))
    folder = RunFolder(run_dir)
    opening = folder.check_run("evaluate", {"result_hash": plan.result_hash}, data.fingerprint(),
                               data.shape_fingerprint(), force, about={"data": data.data_record()})
    folder.claim(opening, {RunFolder.CONFIG: text_writer(plan.config_yaml)})
    if opening.note:
        diagnostics.warn("run-stamp-upgraded" if opening.action == "upgrade" else "units-replaced", opening.note)
    todo = []
    for unit in units:
        if not unit.path.is_file():
            todo.append(unit)
            continue
        problem = unit_problem(unit.path, unit, data, plan.protocol)
        if problem is not None:
            diagnostics.warn("unit-recomputed", f"{unit.path} was not trusted: {problem}",
                             Where(sample=f"seed {unit.seed}, fold {unit.fold.name}"))
            todo.append(unit)
    pending = {u.path for u in todo}
    for unit in units:
        if unit.path not in pending and on_unit_done is not None:
            on_unit_done(unit)
    _run_units(plan, data, todo, run_dir, on_unit_done)
    frames = [pd.read_csv(u.path, dtype={"subject": str, "sample": str}) for u in units]
    preds = pd.concat(frames, ignore_index=True)
    return preds.sort_values(["seed", "sample_id"], kind="stable").reset_index(drop=True)


def _run_units(plan: Plan, data: FeatureSet, todo: list[UnitPlan], run_dir: Path,
               on_unit_done: Callable[[UnitPlan], None] | None) -> None:
    """The units, on the executor the protocol names (:func:`merkit.cluster.executor`: this process, a local Ray
    instance with ``workers`` workers, or the cluster at ``protocol.address``): the data is shared once, each unit
    asks for ``threads_per_fold`` CPUs and its GPU share, and the driver writes each result as it arrives.

    Raises:
        UnitError: units that failed for good on Ray, each named with its error; the others are written.
    """
    from merkit.cluster import executor, gpu_share

    r = plan.resources
    if not todo:
        return
    with executor(r.workers, r.address, r.workers * r.threads_per_fold) as ex:
        data_ref, protocol = ex.share(data), ex.share(plan.protocol)

        def done(i: int, result: UnitResult, node: str | None) -> None:
            write_unit(todo[i], result, run_dir, node)
            if on_unit_done is not None:
                on_unit_done(todo[i])

        failures = ex.run(compute_unit, [(protocol, data_ref, u.fold, u.seed, r.threads_per_fold) for u in todo],
                          [f"seed {u.seed}, fold {u.fold.name}" for u in todo], done,
                          num_cpus=r.threads_per_fold,
                          num_gpus=gpu_share(r.device, r.gpus_per_fold, r.workers, ex.cluster_gpus),
                          max_retries=r.max_retries)
    if failures:
        listed = "; ".join(f"{name}: {error}" for name, error in failures[:5])
        raise UnitError(f"{len(failures)} unit(s) failed after {r.max_retries} retries: {listed}"
                        f"{' ...' if len(failures) > 5 else ''}; the finished units are saved: run the same command "
                        "again to resume")

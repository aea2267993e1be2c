"""Evaluation folds, with the subject-disjointness the whole protocol rests on asserted in code.

* ``loso`` (default): leave one subject out, one fold per dataset-qualified ``subject_id`` (``casme2/sub01`` and
  ``smic/s01`` are different subjects).
* ``lodo``: leave one dataset out, the field's holdout-database evaluation: one fold per dataset, trained on all the
  others (on the MEGC2019 composite: train on two parts, test on the third).
* ``train-test``: one fold, trained on the datasets of ``protocol.train_on`` and tested on those of
  ``protocol.test_on``.

Every fold is checked by :func:`check_fold` when it is made and again when a unit trains on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from merkit.config import SPLITS  # protocol.split's values live with the config
from merkit.errors import ConfigError, DataError, LeakageError


@dataclass(frozen=True)
class Fold:
    """One fold: ``name`` is the held-out subject id (LOSO), ``dataset:<name>`` (LODO) or ``train-test``; indices
    are row positions in the sample table."""

    index: int
    name: str
    train_index: np.ndarray
    test_index: np.ndarray

    @property
    def slug(self) -> str:
        """File-name-safe id, e.g. ``casme2_sub01-3f9a1c``: the name with ``_`` for ``/`` and ``:``, and 6 hex
        digits of the exact name, so that two folds whose flattened names coincide (``a/b_c`` and ``a_b/c``) never
        share a file."""
        digest = hashlib.sha256(self.name.encode()).hexdigest()[:6]
        return f"{self.name.replace('/', '_').replace(':', '_')}-{digest}"


def describe_data(table: pd.DataFrame) -> str:
    """How messages name a table's data: its datasets, e.g. ``"the data (casme2, smic)"``."""
    names = sorted(map(str, set(table["dataset"]))) if "dataset" in table.columns else []
    return f"the data ({', '.join(names)})" if names else "the data"


def loso_folds(table: pd.DataFrame) -> list[Fold]:
    """One fold per ``subject_id``, in sorted subject order; each fold is checked with :func:`check_fold`.

    Raises:
        DataError: the table holds fewer than two subjects (a fold would train on nothing).
    """
    subjects = table["subject_id"].to_numpy()
    count = len(set(subjects))
    if count < 2:
        raise DataError(f"LOSO needs at least two subjects, {describe_data(table)} has {count}",
                        hint="add subjects, or choose protocol.split train-test / lodo")
    folds = []
    for i, subject in enumerate(sorted(set(subjects))):
        fold = Fold(i, subject, np.flatnonzero(subjects != subject), np.flatnonzero(subjects == subject))
        check_fold(table, fold)
        folds.append(fold)
    return folds


def lodo_folds(table: pd.DataFrame) -> list[Fold]:
    """One fold per dataset, trained on every other dataset.

    Raises:
        ConfigError: the table holds fewer than two datasets.
    """
    datasets = table["dataset"].to_numpy()
    names = sorted(set(datasets))
    if len(names) < 2:
        raise ConfigError(f"protocol.split lodo needs at least two datasets in the data, it has {names}")
    folds = []
    for i, name in enumerate(names):
        fold = Fold(i, f"dataset:{name}", np.flatnonzero(datasets != name), np.flatnonzero(datasets == name))
        check_fold(table, fold)
        folds.append(fold)
    return folds


def train_test_fold(table: pd.DataFrame, train_on: list[str], test_on: list[str]) -> list[Fold]:
    """The one fold of ``train-test``: train on ``train_on``'s datasets, test on ``test_on``'s.

    Raises:
        ConfigError: an empty or overlapping list, or a dataset the data does not hold.
    """
    if not train_on or not test_on or set(train_on) & set(test_on):
        raise ConfigError(f"protocol.train_on and protocol.test_on must be non-empty and disjoint, got {train_on} "
                          f"and {test_on}")
    held = set(table["dataset"])
    missing = sorted((set(train_on) | set(test_on)) - held)
    if missing:
        raise ConfigError(f"protocol.train_on / test_on name datasets {missing} that the data does not hold "
                          f"({sorted(held)})")
    datasets = table["dataset"]
    fold = Fold(0, "train-test", np.flatnonzero(datasets.isin(train_on)), np.flatnonzero(datasets.isin(test_on)))
    check_fold(table, fold)
    return [fold]


def make_folds(table: pd.DataFrame, split: str = "loso", train_on: list[str] | None = None,
               test_on: list[str] | None = None) -> list[Fold]:
    """The folds of ``split`` (:data:`SPLITS`).

    Raises:
        ConfigError: an unknown split, or a split the data cannot make.
        DataError: LOSO on fewer than two subjects, or a fold with an empty side (:func:`check_fold`).
    """
    if split == "loso":
        return loso_folds(table)
    if split == "lodo":
        return lodo_folds(table)
    if split == "train-test":
        return train_test_fold(table, list(train_on or []), list(test_on or []))
    raise ConfigError(f"protocol.split must be one of {SPLITS}, got {split!r}")


def check_fold(table: pd.DataFrame, fold: Fold) -> None:
    """Assert that a fold's train and test rows share no subject and no sample (and, for a LOSO fold, that the
    test rows are the fold's subject's).

    Raises:
        DataError: the fold's training or test side is empty.
        LeakageError: a test subject (or sample) also appears in training, or a LOSO test set holds another
            subject.
    """
    for side, rows in (("training", fold.train_index), ("test", fold.test_index)):
        if len(rows) == 0:
            raise DataError(f"fold {fold.name} has no {side} samples ({len(fold.train_index)} training, "
                            f"{len(fold.test_index)} test, of {describe_data(table)})",
                            hint="every fold needs samples on both sides; check protocol.split and the data")
    train, test = table.iloc[fold.train_index], table.iloc[fold.test_index]
    leaked = sorted(set(train["subject_id"]) & set(test["subject_id"]))
    if leaked:
        raise LeakageError(f"fold {fold.name}: subjects {leaked} are in both train and test")
    shared = sorted(set(train["sample_id"]) & set(test["sample_id"]))
    if shared:
        raise LeakageError(f"fold {fold.name}: samples {shared[:5]} are in both train and test")
    if ":" not in fold.name and fold.name != "train-test":
        others = sorted(set(test["subject_id"]) - {fold.name})
        if others:
            raise LeakageError(f"fold {fold.name}: test set holds other subjects {others}")

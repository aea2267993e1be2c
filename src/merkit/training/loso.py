"""Leave-one-subject-out (LOSO) folds, with the subject-disjointness the whole protocol rests on asserted in code.

One fold per subject. Subjects are the dataset-qualified ``subject_id`` of the sample table, so that
``casme2/sub01`` and ``smic/s01`` are different subjects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from merkit.errors import LeakageError


@dataclass(frozen=True)
class Fold:
    """One LOSO fold: ``subject_id`` is the test subject; indices are row positions in the sample table."""

    index: int
    subject_id: str
    train_index: np.ndarray
    test_index: np.ndarray

    @property
    def slug(self) -> str:
        """File-name-safe id, e.g. ``casme2_sub01-3f9a1c``: the subject id with ``_`` for ``/``, and 6 hex digits
        of the exact id, so that two subjects whose flattened names coincide (``a/b_c`` and ``a_b/c``) never share
        a file."""
        digest = hashlib.sha256(self.subject_id.encode()).hexdigest()[:6]
        return f"{self.subject_id.replace('/', '_')}-{digest}"


def loso_folds(table: pd.DataFrame) -> list[Fold]:
    """One fold per ``subject_id``, in sorted subject order; each fold is checked with :func:`check_fold`."""
    subjects = table["subject_id"].to_numpy()
    folds = []
    for i, subject in enumerate(sorted(set(subjects))):
        test = np.flatnonzero(subjects == subject)
        train = np.flatnonzero(subjects != subject)
        fold = Fold(i, subject, train, test)
        check_fold(table, fold)
        folds.append(fold)
    return folds


def check_fold(table: pd.DataFrame, fold: Fold) -> None:
    """Assert that a fold's train and test rows share no subject and no sample.

    Raises:
        LeakageError: a test subject (or sample) also appears in training, or the test set holds a subject other
            than the fold's.
    """
    train, test = table.iloc[fold.train_index], table.iloc[fold.test_index]
    leaked = sorted(set(train["subject_id"]) & set(test["subject_id"]))
    if leaked:
        raise LeakageError(f"fold {fold.subject_id}: subjects {leaked} are in both train and test")
    shared = sorted(set(train["sample_id"]) & set(test["sample_id"]))
    if shared:
        raise LeakageError(f"fold {fold.subject_id}: samples {shared[:5]} are in both train and test")
    others = sorted(set(test["subject_id"]) - {fold.subject_id})
    if others:
        raise LeakageError(f"fold {fold.subject_id}: test set holds other subjects {others}")

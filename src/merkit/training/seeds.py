"""The seeds of a run's units: functions of the run seed and a name, independent of order and process.

A unit's seed is derived from the run seed and the fold's name (and, for ensemble members and inner folds, a
further name), so that the same unit gets the same seed whether it runs first or last, here or on a Ray worker.
"""

from __future__ import annotations

import hashlib


def unit_seed(seed: int, subject_id: str) -> int:
    """The seed of one (seed, fold) unit: the first 32 bits of sha256 of ``"{seed}:{subject_id}"``."""
    return int(hashlib.sha256(f"{seed}:{subject_id}".encode()).hexdigest()[:8], 16)


def member_seed(seed: int, fold: str, member: int) -> int:
    """The seed of ensemble member ``member`` of a unit; member 0's is :func:`unit_seed`, so a single model and an
    ensemble's first member are the same model."""
    return unit_seed(seed, fold if member == 0 else f"{fold}#member{member}")

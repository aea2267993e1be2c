"""Errors and counted warnings that name the sample they come from.

A failure deep in a 68-fold run must say which dataset, subject, sample and frame it came from. Bad input either
raises one of the errors below or is recorded with :meth:`Diagnostics.warn`, which emits a Python warning *and*
counts it, so that the run's report shows how many samples were skipped or repaired and why.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Where:
    """Location of a problem in the data; every field is optional, the more the better."""

    dataset: str | None = None
    subject: str | None = None
    sample: str | None = None
    frame: str | int | None = None

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in asdict(self).items() if v is not None]
        return ", ".join(parts) if parts else "unknown location"


class MerkitError(Exception):
    """Base class of merkit's errors."""


class DataError(MerkitError, ValueError):
    """Bad or missing input data; the message names the dataset, subject, sample and frame where known."""

    def __init__(self, message: str, where: Where | None = None, hint: str | None = None):
        self.where = where or Where()
        self.hint = hint
        located = any(v is not None for v in (self.where.dataset, self.where.subject, self.where.sample,
                                                self.where.frame))
        text = f"{message} [{self.where}]" if located else message
        if hint:
            text += f" -- {hint}"
        super().__init__(text)


class ConfigError(MerkitError, ValueError):
    """An invalid configuration value."""


class CheckpointError(MerkitError, ValueError):
    """A checkpoint that cannot be loaded, or whose preprocessing the current code cannot reproduce."""


class UnitError(MerkitError, RuntimeError):
    """Units of an evaluation failed for good (after their retries); the message names each and its error."""


class OutputError(MerkitError, OSError):
    """A file or folder merkit writes could not be written (a full disk, a read-only folder, a file where a folder
    should be); the message names the path. An :class:`OSError`, so code that catches those still does."""


class LeakageError(MerkitError, AssertionError):
    """Train and test sets of a fold share a subject (or a sample)."""


@dataclass
class Diagnostics:
    """Collects counted warnings for a run's report.

    Every call to :meth:`warn` emits a :class:`UserWarning` that names the location and stores a record, so that
    nothing is dropped silently. ``summary()`` gives counts per kind, written into ``metrics.json`` and ``report.md``.
    """

    records: list[dict] = field(default_factory=list)

    def warn(self, kind: str, message: str, where: Where | None = None) -> None:
        where = where or Where()
        self.records.append({"kind": kind, "message": message, **asdict(where)})
        warnings.warn(f"{kind}: {message} [{where}]", UserWarning, stacklevel=2)

    def extend(self, other: "Diagnostics") -> None:
        self.records.extend(other.records)

    def summary(self) -> dict[str, int]:
        return dict(Counter(r["kind"] for r in self.records))

    def __len__(self) -> int:
        return len(self.records)

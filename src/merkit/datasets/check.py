"""Validate a dataset release on disk and report what is wrong with it, without stopping at the first problem.

:func:`check_dataset` loads a release with permissive policies (samples without frames are kept, invalid
annotations are dropped and counted), then lists: missing frames; gaps in the frame numbering between onset and
offset; onset, apex or offset that are not frames of their sample or are out of order; unknown emotions; duplicate
ids; the repairs applied; and per-class and per-subject counts. ``merkit datasets check NAME --root PATH`` prints
it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from merkit.datasets.frames import describe_numbers, frame_number, missing_frames
from merkit.datasets.registry import get_dataset, load_dataset
from merkit.errors import Diagnostics

PROBLEM_KINDS: tuple[str, ...] = ("missing frames", "frame gap", "annotation out of range",
                                  "annotation out of order", "duplicate id", "unknown emotion")


class Findings:
    """What a check report shares: ``problems`` as ``(kind, what, message)``, and the verdict on them."""

    problems: list[tuple[str, str, str]]

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, kind: str) -> int:
        return sum(1 for k, _, _ in self.problems if k == kind)


@dataclass
class CheckReport(Findings):
    """What :func:`check_dataset` found.

    Attributes:
        dataset: registry name. layout: ``"raw"``/``"cropped"`` (per part for the composite). release: folder.
        samples: samples in the table (samples without frames included, dropped ones not).
        problems: ``(kind, sample_id, message)``, kinds from :data:`PROBLEM_KINDS`.
        repairs: counts of applied repairs per diagnostics kind (``annotation-fix``, ``apex-midpoint``).
        per_class, per_subject: sample counts by emotion and by subject.
    """

    dataset: str
    layout: str
    release: str
    samples: int
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    repairs: dict[str, int] = field(default_factory=dict)
    per_class: dict[str, int] = field(default_factory=dict)
    per_subject: dict[str, int] = field(default_factory=dict)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)

    def to_text(self, max_listed: int = 20) -> str:
        """A plain-text report (what the CLI prints)."""
        lines = [f"dataset   {self.dataset}", f"release   {self.layout} ({self.release})",
                 f"samples   {self.samples} from {len(self.per_subject)} subjects", "", "problems"]
        for kind in PROBLEM_KINDS:
            lines.append(f"  {kind:<24} {self.count(kind)}")
        for kind, sample, message in self.problems[:max_listed]:
            lines.append(f"    - {kind}: {sample}: {message}")
        if len(self.problems) > max_listed:
            lines.append(f"    ... and {len(self.problems) - max_listed} more")
        lines += ["", "repairs applied"]
        lines += [f"  {kind:<24} {n}" for kind, n in sorted(self.repairs.items())] or ["  none"]
        for record in self.diagnostics.records:
            if record["kind"] in self.repairs:
                lines.append(f"    - {record['subject']}/{record['sample']}: {record['message']}")
        lines += ["", "per class"] + [f"  {k:<24} {n}" for k, n in self.per_class.items()]
        lines += ["", "per subject"]
        subjects = list(self.per_subject.items())
        for start in range(0, len(subjects), 6):
            lines.append("  " + "  ".join(f"{k} {n:>3}" for k, n in subjects[start:start + 6]))
        lines += ["", "OK" if self.ok else f"{len(self.problems)} problem(s)"]
        return "\n".join(lines)


_DROPPED_KINDS = {"dropped-invalid-annotation": "annotation out of order", "dropped-duplicate-id": "duplicate id"}
_REPAIR_KINDS = ("annotation-fix", "apex-midpoint", "dropped-missing-apex")


def check_dataset(name: str, root: str | Path, sheet: str | Path | None = None, **options: object) -> CheckReport:
    """Load dataset ``name`` from ``root`` permissively and report its problems and counts.

    Args:
        options: passed to the loader (``layout``, ``variant``, ...); ``missing`` and ``invalid`` are set here.

    Raises:
        ConfigError: unknown dataset. DataError: the release or sheet cannot be found or parsed at all.
    """
    entry = get_dataset(name)
    diagnostics = Diagnostics()
    with warnings.catch_warnings():
        # Everything the loader warns about is in `diagnostics` and in the report; don't print it twice.
        warnings.simplefilter("ignore", UserWarning)
        table = load_dataset(name, root, sheet, diagnostics=diagnostics, missing="keep", invalid="drop", **options)
    problems: list[tuple[str, str, str]] = []
    for record in diagnostics.records:
        sid = f"{record['dataset']}/{record['subject']}/{record['sample']}"
        if record["kind"] in _DROPPED_KINDS:
            problems.append((_DROPPED_KINDS[record["kind"]], sid, record["message"]))
        elif record["kind"] in ("missing-frames", "dropped-missing-sample"):
            problems.append(("missing frames", sid, record["message"]))
    known = entry.emotions
    for row in table.itertuples(index=False):
        if row.emotion not in known:
            problems.append(("unknown emotion", row.sample_id, f"{row.emotion!r} is not in {sorted(known)}"))
        if not row.frames:
            continue
        numbers = {frame_number(f) for f in row.frames}
        first, last = min(numbers), max(numbers)
        start = int(row.onset) if not pd.isna(row.onset) else first
        stop = int(row.offset) if not pd.isna(row.offset) else last
        gaps = missing_frames(row.frames, start, stop)
        if gaps and start in numbers and stop in numbers:
            problems.append(("frame gap", row.sample_id, f"frames {describe_numbers(gaps)} are missing between "
                             f"onset {start} and offset {stop}"))
        for column in ("onset", "apex", "offset"):
            value = getattr(row, column)
            if not pd.isna(value) and int(value) not in numbers:
                problems.append(("annotation out of range", row.sample_id,
                                 f"{column} {int(value)} is not a frame of the sample (frames {first}..{last}, "
                                 f"{len(numbers)} files)"))
    repairs = {k: v for k, v in diagnostics.summary().items() if k in _REPAIR_KINDS}
    per_subject = table.groupby("subject_id", sort=True).size()
    return CheckReport(
        dataset=entry.name,
        layout=str(table.attrs.get("layout", "")),
        release=str(table.attrs.get("release", root)),
        samples=len(table),
        problems=problems,
        repairs=repairs,
        per_class={str(k): int(v) for k, v in table["emotion"].value_counts().items()},
        per_subject={str(k).split("/", 1)[1] if entry.name != "megc2019" else str(k): int(v)
                     for k, v in per_subject.items()},
        diagnostics=diagnostics,
    )

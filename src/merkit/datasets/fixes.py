"""Annotation repairs: keyed fixes, the missing-apex policy and the screening that precedes the sample table.

Every repair is visible. A :class:`Fix` names its sample by ``(subject, sample)``, never by row number, states the
values it expects to find and gives a one-line reason; applying it records a ``"annotation-fix"`` warning in the
run's :class:`~merkit.errors.Diagnostics`. A fix that matches no row, or whose expected values differ from the
sheet (another sheet version), raises :class:`~merkit.errors.DataError`: a stale fix must never become a silent
no-op. Samples that are dropped (missing apex with ``missing_apex="drop"``, invalid annotations with
``invalid="drop"``, missing frames with ``missing="drop"``) are each recorded as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import pandas as pd

from merkit.errors import DataError, Diagnostics, Where

ROW_COLUMNS: tuple[str, ...] = ("subject", "sample", "emotion", "onset", "apex", "offset", "action_units")
FRAME_COLUMNS: tuple[str, ...] = ("onset", "apex", "offset")

MissingApex = Literal["midpoint", "drop", "keep"]
Invalid = Literal["error", "drop"]


@dataclass(frozen=True)
class Fix:
    """One correction of an official annotation sheet.

    Attributes:
        subject: the subject as the loader names it (``"032"``, ``"sub04"``).
        sample: the sample name (``"032_3_1"``).
        reason: one line saying what is wrong and where the correction comes from.
        expect: column -> value the sheet must hold before the fix (guards against another sheet version).
        set: column -> corrected value. Empty with ``drop=True``.
        drop: remove the sample instead of correcting it.
    """

    subject: str
    sample: str
    reason: str
    expect: Mapping[str, object] = field(default_factory=dict)
    set: Mapping[str, object] = field(default_factory=dict)
    drop: bool = False


def _same(a: object, b: object) -> bool:
    if pd.isna(a) and pd.isna(b):  # type: ignore[arg-type]
        return True
    return str(a).strip().lower() == str(b).strip().lower()


def apply_fixes(rows: pd.DataFrame, fixes: Sequence[Fix], dataset: str,
                diagnostics: Diagnostics | None = None) -> pd.DataFrame:
    """Apply ``fixes`` to annotation rows (columns ``subject, sample, ...``); return a corrected copy.

    Raises:
        DataError: a fix matches no row or several rows, or the row does not hold the values the fix expects.
    """
    out = rows.copy()
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    dropped: list[int] = []
    for fix in fixes:
        where = Where(dataset, fix.subject, fix.sample)
        hit = out.index[(out["subject"] == fix.subject) & (out["sample"] == fix.sample)]
        if len(hit) != 1:
            raise DataError(f"annotation fix matches {len(hit)} rows, expected exactly one ({fix.reason})", where,
                            hint="the sheet may be another version; pass fixes=() to load it without fixes")
        index = hit[0]
        for column, value in fix.expect.items():
            if not _same(out.at[index, column], value):
                raise DataError(f"annotation fix expects {column}={value!r} but the sheet holds "
                                f"{out.at[index, column]!r} ({fix.reason})", where,
                                hint="the sheet may be another version; pass fixes=() to load it without fixes")
        if fix.drop:
            dropped.append(index)
            diagnostics.warn("annotation-fix", f"dropped: {fix.reason}", where)
            continue
        changes = []
        for column, value in fix.set.items():
            changes.append(f"{column} {out.at[index, column]} -> {value}")
            out.at[index, column] = value
        diagnostics.warn("annotation-fix", f"{', '.join(changes)}: {fix.reason}", where)
    return out.drop(index=dropped).reset_index(drop=True)


def to_frame_number(value: object) -> int | None:
    """A sheet cell as a frame number; ``None`` for empty cells and placeholders such as ``/`` or ``-``.

    Raises:
        DataError: the cell holds text that is neither a number nor a placeholder.
    """
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    if text in {"", "/", "-", "?", "nan", "NaN", "None"}:
        return None
    try:
        number = float(text)
    except ValueError:
        raise DataError(f"{text!r} is not a frame number") from None
    if number != int(number):
        raise DataError(f"{text!r} is not a whole frame number")
    return int(number)


def frame_columns(rows: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Turn the onset/apex/offset columns into nullable ints (placeholders become missing).

    Raises:
        DataError: a cell is not a frame number; the message names the sample.
    """
    out = rows.copy()
    for column in FRAME_COLUMNS:
        values = []
        for subject, sample, value in zip(out["subject"], out["sample"], out[column]):
            try:
                values.append(to_frame_number(value))
            except DataError as err:
                raise DataError(f"{column}: {err}", Where(dataset, subject, sample)) from None
        out[column] = pd.array(values, dtype="Int64")
    return out


def fill_missing_apex(rows: pd.DataFrame, dataset: str, policy: MissingApex = "midpoint",
                      diagnostics: Diagnostics | None = None) -> pd.DataFrame:
    """Deal with rows whose apex is missing (CASME II writes ``/``; SMIC has none at all).

    Args:
        policy: ``"midpoint"`` sets ``apex = (onset + offset) // 2`` (the common convention for SMIC, and the
            fallback for CASME II's ``/``); ``"drop"`` removes the row; ``"keep"`` leaves it missing.

    Each filled or dropped row is recorded in ``diagnostics`` (``"apex-midpoint"`` / ``"dropped-missing-apex"``).

    Raises:
        DataError: ``"midpoint"`` is asked for a row without onset or offset, or the policy is unknown.
    """
    if policy not in ("midpoint", "drop", "keep"):
        raise DataError(f"unknown missing_apex policy {policy!r}; use 'midpoint', 'drop' or 'keep'")
    out = rows.copy()
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    keep = []
    for index, row in out.iterrows():
        where = Where(dataset, row["subject"], row["sample"])
        if not pd.isna(row["apex"]) or policy == "keep":
            keep.append(True)
            continue
        if policy == "drop":
            diagnostics.warn("dropped-missing-apex", "the sheet gives no apex frame", where)
            keep.append(False)
            continue
        if pd.isna(row["onset"]) or pd.isna(row["offset"]):
            raise DataError("no apex, and no onset/offset to take the midpoint of", where)
        out.at[index, "apex"] = (int(row["onset"]) + int(row["offset"])) // 2
        diagnostics.warn("apex-midpoint", f"no apex in the sheet; using the midpoint {out.at[index, 'apex']}",
                         where)
        keep.append(True)
    return out.loc[keep].reset_index(drop=True)


def annotation_problem(onset: object, apex: object, offset: object) -> str | None:
    """Why onset/apex/offset are inconsistent, or ``None`` when they are fine (missing values are not checked)."""
    if not (pd.isna(onset) or pd.isna(offset)) and onset > offset:  # type: ignore[operator]
        return f"onset {onset} is after offset {offset}"
    if not (pd.isna(apex) or pd.isna(onset) or pd.isna(offset)) and not onset <= apex <= offset:  # type: ignore
        return f"apex {apex} lies outside [onset {onset}, offset {offset}]"
    return None


def screen(rows: pd.DataFrame, dataset: str, invalid: Invalid = "error",
           diagnostics: Diagnostics | None = None) -> pd.DataFrame:
    """Find duplicate ``(subject, sample)`` keys and inconsistent onset/apex/offset before the table is built.

    Args:
        invalid: ``"error"`` raises on the first problem; ``"drop"`` removes the sample and records it
            (``"dropped-duplicate-id"`` keeps the first occurrence; ``"dropped-invalid-annotation"``).

    Raises:
        DataError: with ``invalid="error"``, on a duplicate key or an out-of-order annotation.
    """
    if invalid not in ("error", "drop"):
        raise DataError(f"unknown invalid policy {invalid!r}; use 'error' or 'drop'")
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    keep, seen = [], set()
    for row in rows.itertuples(index=False):
        where = Where(dataset, row.subject, row.sample)
        key = (row.subject, row.sample)
        problem, kind = None, ""
        if key in seen:
            problem, kind = "the sample id occurs more than once", "dropped-duplicate-id"
        else:
            problem, kind = annotation_problem(row.onset, row.apex, row.offset), "dropped-invalid-annotation"
        seen.add(key)
        if problem is None:
            keep.append(True)
            continue
        if invalid == "error":
            raise DataError(problem, where, hint="add an annotation fix, or load with invalid='drop'")
        diagnostics.warn(kind, problem, where)
        keep.append(False)
    return rows.loc[keep].reset_index(drop=True)


def prepare(rows: pd.DataFrame, dataset: str, fixes: Sequence[Fix], *, missing_apex: MissingApex = "midpoint",
            invalid: Invalid = "error", diagnostics: Diagnostics | None = None) -> pd.DataFrame:
    """The annotation half of every loader: frame numbers, keyed fixes, the missing-apex policy, screening.

    Raises:
        DataError: from :func:`frame_columns`, :func:`apply_fixes`, :func:`fill_missing_apex` or :func:`screen`.
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    rows = frame_columns(rows, dataset)
    rows = apply_fixes(rows, fixes, dataset, diagnostics)
    rows = frame_columns(rows, dataset)  # fixed values may arrive as plain ints
    rows = fill_missing_apex(rows, dataset, missing_apex, diagnostics)
    return screen(rows, dataset, invalid, diagnostics)

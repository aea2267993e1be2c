"""Frame discovery shared by the raw-dataset loaders: find a release on disk, attach each sample's frames in order.

Frame files are listed and numbered by :mod:`merkit.media` (the number is the last integer in the file stem).

Each dataset ships a *raw* release and, for most, a *cropped* one (faces cut out and registered; CASME II prefixes
those files with ``reg_`` and puts them under ``Cropped/``). :func:`find_release` accepts either and says which it
found, so that a run report can state what the features were computed from.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import pandas as pd

from merkit.datasets.table import new_sample_table
from merkit.errors import DataError, Diagnostics, Where
from merkit.media import frame_number, is_image, list_frames

CROPPED_PREFIX = "reg_"

LayoutChoice = Literal["auto", "raw", "cropped"]


def frames_between(frames: Sequence[Path], first: int, last: int) -> list[Path]:
    """The frames whose number lies in ``[first, last]`` (frame numbers, inclusive), keeping their order."""
    return [p for p in frames if first <= frame_number(p) <= last]


def missing_frames(frames: Sequence[str | Path], first: int | None = None, last: int | None = None) -> list[int]:
    """The frame numbers absent from ``frames`` between ``first`` and ``last`` (inclusive; default the first and
    last frame present): the gaps that would distort any multi-frame input (resampling, long-term flow, dynamic
    images, spotting)."""
    numbers = {frame_number(f) for f in frames}
    if not numbers:
        return []
    lo = min(numbers) if first is None else int(first)
    hi = max(numbers) if last is None else int(last)
    return [n for n in range(lo, hi + 1) if n not in numbers]


def describe_numbers(numbers: Sequence[int], limit: int = 8) -> str:
    """``[5, 6, 7, 12]`` -> ``"5-7, 12"``, at most ``limit`` runs."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs[:limit])
    return text + (f", ... ({len(numbers)} frames)" if len(runs) > limit else "")


@dataclass(frozen=True)
class Release:
    """Where a dataset release lies on disk and which kind it is.

    Attributes:
        kind: ``"raw"`` (the original frames) or ``"cropped"`` (faces cut out and registered by the authors).
        base: the folder whose children are the subject folders.
    """

    kind: str
    base: Path

    def __str__(self) -> str:
        return f"{self.kind} release at {self.base}"


def _first_image(folder: Path, max_files: int = 10_000) -> Path | None:
    seen = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            seen += 1
            if is_image(Path(name)):
                return Path(dirpath) / name
            if seen > max_files:
                return None
    return None


def _kind_of(root: Path, base: Path, subjects: list[Path]) -> str:
    # The reg_ prefix is the strongest evidence; then the release's own folder names: root itself when it is the
    # release (.../Cropped), else the container path below root (Cropped/, SMIC_all_cropped/HS). Names above
    # that are the user's own and say nothing about the release.
    for subject in subjects[:3]:
        first = _first_image(subject)
        if first is not None and first.name.startswith(CROPPED_PREFIX):
            return "cropped"
    names = [root.name] if base == root else list(base.relative_to(root).parts)
    return "cropped" if any("crop" in name.lower() for name in names) else "raw"


def find_release(
    root: str | Path,
    dataset: str,
    subject_pattern: str,
    containers: Iterable[str] = (),
    layout: LayoutChoice = "auto",
) -> Release:
    """Locate the folder that holds a dataset's subject folders, below ``root``.

    ``root`` may be that folder itself or a parent that holds it under one of ``containers`` (for CASME II:
    ``Cropped``, ``CASME2_RAW_selected``, ...). A candidate counts when it has a child folder whose name fully
    matches ``subject_pattern``. Its kind is ``"cropped"`` when its first frame carries the ``reg_`` prefix or a
    folder from ``root`` down to it is named like a crop folder (``Cropped``, ``SMIC_all_cropped/HS``), ``"raw"``
    otherwise.

    Args:
        layout: ``"auto"`` takes the only release found; ``"raw"`` or ``"cropped"`` picks one when both exist.

    Raises:
        DataError: ``root`` does not exist; no release is found; or ``layout="auto"`` finds both a raw and a
            cropped release (the message lists them and asks for ``layout``).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset root not found: {root}", Where(dataset))
    pattern = re.compile(subject_pattern)
    candidates = [root] + [root / c for c in containers]
    found: dict[str, Release] = {}
    for base in candidates:
        if not base.is_dir():
            continue
        subjects = sorted(p for p in base.iterdir() if p.is_dir() and pattern.fullmatch(p.name))
        if not subjects:
            continue
        release = Release(_kind_of(root, base, subjects), base)
        found.setdefault(release.kind, release)
    if not found:
        looked = ", ".join(str(c) for c in candidates)
        raise DataError(f"no {dataset} release under {root}: no subject folder matching {subject_pattern!r} "
                        f"in {looked}", Where(dataset),
                        hint="point --root at the folder holding the subject folders")
    if layout == "auto":
        if len(found) > 1:
            raise DataError(f"both a raw and a cropped {dataset} release are under {root}: "
                            + "; ".join(str(r) for r in found.values()), Where(dataset),
                            hint="choose one with layout='raw' or layout='cropped' (--layout)")
        return next(iter(found.values()))
    if layout not in found:
        raise DataError(f"no {layout} {dataset} release under {root}; found "
                        + "; ".join(str(r) for r in found.values()), Where(dataset))
    return found[layout]


def find_sheet(root: str | Path, patterns: Sequence[str], dataset: str, depth: int = 2) -> Path:
    """Find the one annotation sheet matching ``patterns`` (globs) in ``root`` or up to ``depth`` levels below;
    failing that, beside ``root`` (in its parent).

    Raises:
        DataError: none or several sheets match; the message asks for an explicit ``sheet``.
    """
    root = Path(root)
    hits: set[Path] = set()
    for level in range(depth + 1):
        for pattern in patterns:
            hits.update(p for p in root.glob("/".join(["*"] * level + [pattern])) if p.is_file())
    if not hits:
        # Pointing root at the frame folder (e.g. Cropped/) leaves the sheet one level up, beside it.
        for pattern in patterns:
            hits.update(p for p in root.parent.glob(pattern) if p.is_file())
    hits = {p for p in hits if not p.name.startswith("~$")}  # Excel lock files
    if len(hits) != 1:
        what = "no" if not hits else f"{len(hits)}"
        listed = "" if not hits else ": " + ", ".join(sorted(str(p) for p in hits))
        raise DataError(f"{what} {dataset} annotation sheets matching {list(patterns)} under {root}{listed}",
                        Where(dataset), hint="pass the sheet explicitly (sheet=... / --sheet)")
    return hits.pop()


Missing = Literal["error", "drop", "keep"]


def attach_frames(
    rows: pd.DataFrame,
    dataset: str,
    folder_of: Callable[[dict], Path],
    *,
    missing: Missing = "error",
    window: bool = False,
    diagnostics: Diagnostics | None = None,
) -> pd.DataFrame:
    """Add a ``frames`` column (sorted frame paths as ``str``) to annotation rows.

    Args:
        rows: annotation rows with ``subject, sample, onset, offset``.
        folder_of: maps a row (as a dict) to its frame folder.
        missing: a missing or empty folder ``"error"`` raises, ``"drop"`` drops the sample, ``"keep"`` keeps it
            with ``frames == []``; both of the latter record a counted warning.
        window: keep only the frames in ``[onset, offset]``, for releases where one folder holds a long video
            with several samples (CAS(ME)^3).

    Raises:
        DataError: with ``missing="error"``, a sample's folder is absent or empty, or (``window=True``) holds no
            frame in ``[onset, offset]``.
    """
    if missing not in ("error", "drop", "keep"):
        raise DataError(f"unknown missing-frames policy {missing!r}; use 'error', 'drop' or 'keep'")
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    frames_col, keep = [], []
    for row in rows.to_dict("records"):
        where = Where(dataset, row["subject"], row["sample"])
        folder = folder_of(row)
        try:
            frames = list_frames(folder, where)
            if window:
                if pd.isna(row["onset"]) or pd.isna(row["offset"]):
                    raise DataError("no onset/offset to cut the sample's frames from its video", where)
                frames = frames_between(frames, int(row["onset"]), int(row["offset"]))
                if not frames:
                    raise DataError(f"no frame of {folder} lies in [onset {row['onset']}, offset "
                                    f"{row['offset']}]", where)
        except DataError as err:
            if missing == "error":
                raise
            kind = "dropped-missing-frames" if missing == "drop" else "missing-frames"
            # The record carries the location in its own fields; keep the message without the "[...]" suffix.
            diagnostics.warn(kind, str(err).split(" [")[0], where)
            keep.append(missing == "keep")
            if missing == "keep":
                frames_col.append([])
            continue
        keep.append(True)
        frames_col.append([str(p) for p in frames])
    out = rows.loc[keep].copy()
    out["frames"] = pd.Series(frames_col, index=out.index, dtype=object)
    return out.reset_index(drop=True)


def sample_table(rows: pd.DataFrame, dataset: str, release: Release | None,
                 diagnostics: Diagnostics | None = None) -> pd.DataFrame:
    """Build the validated sample table of ``dataset`` from prepared rows, noting the release it came from.

    ``df.attrs["layout"]`` is ``"raw"``, ``"cropped"`` or ``"sheet-only"`` (no frames were looked for) and
    ``df.attrs["release"]`` the folder holding the subject folders. Ids are normalised
    (:func:`~merkit.datasets.table.normalise_ids`; each changed id is an ``id-normalised`` warning in
    ``diagnostics``).

    Raises:
        DataError: no sample is left, or the table fails :func:`~merkit.datasets.table.validate_sample_table`.
    """
    if rows.empty:
        raise DataError("no samples left to build a table from", Where(dataset))
    records = rows.assign(dataset=dataset).to_dict("records")
    table = new_sample_table(records, diagnostics)
    table.attrs["layout"] = release.kind if release is not None else "sheet-only"
    table.attrs["release"] = str(release.base) if release is not None else ""
    return table

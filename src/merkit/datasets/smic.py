"""SMIC (Li et al., "A spontaneous micro-expression database: Inducement, collection and baseline", FG 2013):
SMIC-HS (100 fps; 164 samples from 16 subjects), SMIC-VIS and SMIC-NIR (25 fps).

Release layout: ``HS/s1/micro/negative/s1_ne_01/image559740.bmp`` (the cropped release puts the same tree under
``SMIC_all_cropped/``). The emotion (negative, positive, surprise) is the folder name; each sample folder holds
exactly the clip, so onset and offset are its first and last frame numbers.

SMIC has **no apex annotation**. ``apex="midpoint"`` (default) takes ``(onset + offset) // 2``, the convention
of the MEGC2019 composite; ``apex="sheet"`` takes the apex column of a sheet you pass (for example the RCN
benchmark's estimated apexes); a callable ``apex(frames) -> frame number`` plugs in a spotted apex.

There is no official sheet. Other tools write subjects as ``s1`` or ``s01`` and samples as ``s1_ne_01`` or
``s01_ne_01``; both are accepted and the table uses the release's spelling, ``s1`` / ``s1_ne_01``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Literal, Sequence

import pandas as pd

from merkit.datasets.fixes import Fix, Invalid, prepare
from merkit.datasets.frames import (LayoutChoice, Missing, attach_frames, find_release, frame_number,
                                    sample_table)
from merkit.errors import DataError, Diagnostics, Where

DATASET = "smic"
VARIANTS: tuple[str, ...] = ("HS", "VIS", "NIR")
EMOTIONS: frozenset[str] = frozenset({"negative", "positive", "surprise"})
SUBJECT_PATTERN = r"s\d+"
FIXES: tuple[Fix, ...] = ()
_CODES = {"ne": "negative", "po": "positive", "sur": "surprise"}
_SAMPLE = re.compile(r"s0*(\d+)_(ne|po|sur)_(\d+)", re.IGNORECASE)

ApexRule = Literal["midpoint", "sheet"] | Callable[[Sequence[Path]], int]


def dataset_name(variant: str = "HS") -> str:
    """``"smic"`` for SMIC-HS, ``"smic-vis"`` and ``"smic-nir"`` for the other cameras."""
    if variant.upper() not in VARIANTS:
        raise DataError(f"unknown SMIC variant {variant!r}; use one of {VARIANTS}")
    return DATASET if variant.upper() == "HS" else f"{DATASET}-{variant.lower()}"


def subject_name(value: object) -> str:
    """``"s01"``, ``"s1"``, ``1`` -> ``"s1"``.

    Raises:
        DataError: the value is not a SMIC subject.
    """
    text = str(value).strip().lower()
    digits = text[1:] if text.startswith("s") else text
    if not digits.isdigit():
        raise DataError(f"SMIC subject {value!r} is not like 's1' or 's01'", Where(DATASET))
    return f"s{int(digits)}"


def sample_name(value: object) -> str:
    """``"s01_ne_01"`` or ``"s1_ne_01"`` -> ``"s1_ne_01"``.

    Raises:
        DataError: the name does not follow ``s<N>_<ne|po|sur>_<K>``.
    """
    match = _SAMPLE.fullmatch(str(value).strip())
    if match is None:
        raise DataError(f"SMIC sample {value!r} is not like 's1_ne_01'", Where(DATASET))
    return f"s{int(match.group(1))}_{match.group(2).lower()}_{match.group(3)}"


def emotion_of(sample: str) -> str:
    """The emotion coded in a sample name (``s1_sur_02`` -> ``"surprise"``)."""
    return _CODES[_SAMPLE.fullmatch(sample_name(sample)).group(2).lower()]  # type: ignore[union-attr]


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read a SMIC coding list: a csv with a ``Subject, Filename, [Emotion,] OnsetFrame, ApexFrame, OffsetFrame``
    header (SLSTT's), or headerless ``subject, sample, onset, apex, offset[, label]`` rows (RCN's).

    Returns:
        One row per sample with ``subject, sample, emotion, onset, apex, offset, action_units`` (subject and
        sample in the release spelling; the emotion from the sample name).

    Raises:
        DataError: the file is missing, a name is malformed, or an ``Emotion`` cell disagrees with the name.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"SMIC sheet not found: {path}", Where(DATASET))
    raw = pd.read_csv(path, dtype=object, header=None)
    if str(raw.iat[0, 0]).strip().lower() == "subject":
        raw.columns = [str(c).strip() for c in raw.iloc[0]]
        raw = raw.iloc[1:]
    else:
        names = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Label"]
        raw.columns = names[: raw.shape[1]] + [f"extra{i}" for i in range(raw.shape[1] - len(names))]
    absent = [c for c in ("Subject", "Filename", "OnsetFrame", "OffsetFrame") if c not in raw.columns]
    if absent:
        raise DataError(f"{path.name} lacks the columns {absent}", Where(DATASET))
    rows = pd.DataFrame({
        "subject": [subject_name(s) for s in raw["Subject"]],
        "sample": [sample_name(s) for s in raw["Filename"]],
        "onset": raw["OnsetFrame"].to_numpy(),
        "apex": raw["ApexFrame"].to_numpy() if "ApexFrame" in raw.columns else None,
        "offset": raw["OffsetFrame"].to_numpy(),
        "action_units": "",
    })
    rows["emotion"] = [emotion_of(s) for s in rows["sample"]]
    if "Emotion" in raw.columns:
        for subject, sample, named, written in zip(rows["subject"], rows["sample"], rows["emotion"],
                                                   raw["Emotion"]):
            if str(written).strip().lower() != named:
                raise DataError(f"emotion {written!r} disagrees with the sample name ({named})",
                                Where(DATASET, subject, sample))
    return rows


def scan_tree(base: Path, dataset: str = DATASET) -> pd.DataFrame:
    """List the samples of a SMIC release tree ``base/<subject>/micro/<emotion>/<sample>/``.

    Returns:
        ``subject, sample, emotion, folder`` per sample folder (names in the release spelling).

    Raises:
        DataError: an emotion folder is not negative/positive/surprise, or a sample folder's name disagrees
            with its emotion folder.
    """
    rows = []
    for subject_dir in sorted(p for p in base.iterdir() if p.is_dir() and re.fullmatch(SUBJECT_PATTERN, p.name)):
        micro = subject_dir / "micro"
        if not micro.is_dir():
            continue
        for emotion_dir in sorted(p for p in micro.iterdir() if p.is_dir()):
            emotion = emotion_dir.name.lower()
            if emotion not in EMOTIONS:
                raise DataError(f"unexpected emotion folder {emotion_dir}", Where(dataset, subject_dir.name))
            for sample_dir in sorted(p for p in emotion_dir.iterdir() if p.is_dir()):
                sample = sample_name(sample_dir.name)
                where = Where(dataset, subject_name(subject_dir.name), sample)
                if emotion_of(sample) != emotion:
                    raise DataError(f"sample folder {sample_dir.name} lies in the {emotion} folder", where)
                rows.append({"subject": subject_name(subject_dir.name), "sample": sample, "emotion": emotion,
                             "folder": sample_dir})
    return pd.DataFrame(rows, columns=["subject", "sample", "emotion", "folder"])


def _fill_frames(rows: pd.DataFrame, dataset: str, apex: ApexRule) -> None:
    """Onset and offset from a clip's first and last frame where the sheet gives none, and the apex by ``apex``
    (the midpoint, or a spotting callable), in place.

    Raises:
        DataError: a spotted apex lies outside the clip.
    """
    for index, row in rows.iterrows():
        frames = row["frames"]
        if not frames:
            continue
        if pd.isna(row["onset"]):
            rows.at[index, "onset"] = frame_number(frames[0])
        if pd.isna(row["offset"]):
            rows.at[index, "offset"] = frame_number(frames[-1])
        if apex == "midpoint":
            rows.at[index, "apex"] = (int(rows.at[index, "onset"]) + int(rows.at[index, "offset"])) // 2
        elif callable(apex):
            spotted = int(apex([Path(f) for f in frames]))
            if not frame_number(frames[0]) <= spotted <= frame_number(frames[-1]):
                raise DataError(f"spotted apex {spotted} lies outside the clip", Where(dataset, row["subject"],
                                                                                       row["sample"], spotted))
            rows.at[index, "apex"] = spotted


def load(
    root: str | Path,
    sheet: str | Path | None = None,
    *,
    diagnostics: Diagnostics | None = None,
    variant: str = "HS",
    layout: LayoutChoice = "auto",
    apex: ApexRule = "midpoint",
    fixes: tuple[Fix, ...] | None = None,
    invalid: Invalid = "error",
    missing: Missing = "error",
) -> pd.DataFrame:
    """Load SMIC-HS (or ``variant="VIS"``/``"NIR"``) as a sample table.

    Without ``sheet`` the samples are the folders of the tree, onset/offset their first/last frame. With a
    sheet, its rows choose the samples and give onset/offset (and the apex with ``apex="sheet"``).

    Args:
        root: the folder holding ``s1/``..., or a parent holding ``HS/`` (or ``SMIC_all_raw/HS``,
            ``SMIC_all_cropped/HS``).
        apex: ``"midpoint"``, ``"sheet"`` or a callable ``frames -> apex frame number`` (a spotted apex).
        diagnostics, layout, fixes, invalid, missing: as in :func:`merkit.datasets.casme2.load`.

    Returns:
        The sample table; ``attrs["layout"]`` is ``"raw"`` or ``"cropped"``, ``attrs["apex"]`` the apex rule.

    Raises:
        DataError: no release is found; ``apex="sheet"`` without a sheet; a sheet sample has no folder or a
            different emotion folder (with ``missing="error"``); a spotted apex lies outside the clip.
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    dataset = dataset_name(variant)
    v = variant.upper()
    containers = (v, f"SMIC_all_raw/{v}", f"SMIC_all_cropped/{v}", f"SMIC/{v}", f"SMIC/SMIC_all_raw/{v}",
                  f"SMIC/SMIC_all_cropped/{v}")
    release = find_release(root, dataset, SUBJECT_PATTERN, containers, layout)
    tree = scan_tree(release.base, dataset)
    folders = {(r.subject, r.sample): r for r in tree.itertuples(index=False)}
    if apex == "sheet" and sheet is None:
        raise DataError("apex='sheet' needs a sheet with an ApexFrame column", Where(dataset))
    if sheet is None:
        rows = tree.drop(columns="folder").assign(onset=None, apex=None, offset=None, action_units="")
    else:
        rows = read_sheet(sheet)
        for row in rows.itertuples(index=False):
            hit = folders.get((row.subject, row.sample))
            if hit is not None and hit.emotion != row.emotion:
                raise DataError(f"the sheet says {row.emotion}, the folder {hit.emotion}",
                                Where(dataset, row.subject, row.sample))
        if apex != "sheet":
            rows = rows.assign(apex=None)

    def folder_of(row: dict) -> Path:
        hit = folders.get((row["subject"], row["sample"]))
        return hit.folder if hit is not None else release.base / row["subject"] / "micro" / row["emotion"] / \
            row["sample"]

    rows = attach_frames(rows, dataset, folder_of, missing=missing, diagnostics=diagnostics)
    _fill_frames(rows, dataset, apex)
    frames_of = {(s, n): f for s, n, f in zip(rows["subject"], rows["sample"], rows.pop("frames"))}
    # Fixes and screening run once onset/offset are known (without a sheet they come from the tree).
    rows = prepare(rows, dataset, FIXES if fixes is None else fixes, missing_apex="keep", invalid=invalid,
                   diagnostics=diagnostics)
    rows["frames"] = pd.Series([frames_of[(s, n)] for s, n in zip(rows["subject"], rows["sample"])],
                               index=rows.index, dtype=object)
    table = sample_table(rows, dataset, release, diagnostics)
    table.attrs["apex"] = apex if isinstance(apex, str) else getattr(apex, "__name__", "callable")
    return table

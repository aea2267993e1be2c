"""The MEGC2019 composite 3-class benchmark (See et al., "MEGC 2019 - The second facial micro-expressions grand
challenge", FG 2019) built from the raw releases of CASME II, SAMM and SMIC-HS.

The samples are chosen by the **official ground-truth list** ``combined_3class_gt.csv`` (no header:
``db, subject, video, label``; label 0 negative, 1 positive, 2 surprise): 442 samples, 145 CASME II + 133 SAMM +
164 SMIC-HS, 68 subjects. Mapping rules (e.g. "disgust and repression are negative") are *not* used to select,
because they disagree with the official list on CASME II (the usual rule selects 156 samples of the 20190701
sheet, not 145: it adds 2 disgust, 3 surprise, 4 sadness and 2 fear samples the organisers excluded). The rules
are only used as a cross-check: every selected sample's emotion must map, under the ``megc2019-3class`` scheme, to
the label the list gives.

The list spells SAMM subjects ``6`` and SMIC subjects ``s01``; the table uses each release's spelling (``006``,
``s1``, ``s1_ne_01``) and keeps each part's ``dataset`` name, so LOSO folds stay per subject of each dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from merkit.datasets import casme2, samm, smic
from merkit.datasets.frames import Missing, find_sheet
from merkit.datasets.schemes import get_scheme
from merkit.datasets.table import validate_sample_table
from merkit.errors import DataError, Diagnostics, Where

DATASET = "megc2019"
PARTS: tuple[str, ...] = ("casme2", "samm", "smic")
CLASSES: tuple[str, ...] = ("negative", "positive", "surprise")
EMOTIONS: frozenset[str] = casme2.EMOTIONS | samm.EMOTIONS | smic.EMOTIONS
SHEET_PATTERNS: tuple[str, ...] = ("combined_3class_gt.csv",)
_LOADERS = {"casme2": casme2.load, "samm": samm.load, "smic": smic.load}
_SUBJECT = {"casme2": casme2.subject_name, "samm": samm.subject_name, "smic": smic.subject_name}


@dataclass(frozen=True)
class Counts:
    """Samples, subjects and samples per class of a benchmark or of one of its parts."""

    samples: int
    subjects: int
    per_class: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    """What a benchmark's released flow folder holds: its counts in full and per part (``dataset``), its class
    scheme, and the sizes of its images (pixels, square). ``merkit datasets check`` compares a folder with it."""

    name: str
    scheme: str
    total: Counts
    parts: dict[str, Counts]
    flow_size: int
    apex_size: int


#: The MEGC2019 composite as the official list ``combined_3class_gt.csv`` defines it (a test recounts the list),
#: with the sizes of its released images (STSTNet's 28x28 flow PNGs and 224x224 apex crops).
COMPOSITE = Benchmark(
    name="megc2019-composite", scheme="megc2019-3class",
    total=Counts(442, 68, {"negative": 250, "positive": 109, "surprise": 83}),
    parts={"smic": Counts(164, 16, {"negative": 70, "positive": 51, "surprise": 43}),
           "casme2": Counts(145, 24, {"negative": 88, "positive": 32, "surprise": 25}),
           "samm": Counts(133, 28, {"negative": 92, "positive": 26, "surprise": 15})},
    flow_size=28, apex_size=224)


def release_names(dataset: str, subject: object, sample: object) -> tuple[str, str]:
    """A part's subject and sample in its release's spelling (SMIC ``s01``/``s01_ne_01`` -> ``s1``/``s1_ne_01``,
    SAMM ``6`` -> ``006``), as the raw loaders and :func:`read_sheet` write them.

    Raises:
        DataError: ``dataset`` is not a part, or a name does not follow its part's pattern.
    """
    if dataset not in PARTS:
        raise DataError(f"unknown MEGC2019 part {dataset!r}; use {PARTS}", Where(dataset, str(subject), str(sample)))
    name = smic.sample_name(sample) if dataset == "smic" else str(sample).strip()
    return _SUBJECT[dataset](subject), name


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read the official list ``combined_3class_gt.csv``.

    Returns:
        ``dataset, subject, sample, label, emotion`` per sample, names in the releases' spelling, ``emotion``
        the class name of ``label`` (negative, positive, surprise).

    Raises:
        DataError: the file is missing, a row has an unknown database or a label outside 0..2.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MEGC2019 list not found: {path}", Where(DATASET))
    raw = pd.read_csv(path, header=None, names=["db", "subject", "video", "label"], dtype=str)
    rows = []
    for db, subject, video, label in raw.itertuples(index=False):
        db = str(db).strip().lower()
        where = Where(db, str(subject), str(video))
        if db not in PARTS:
            raise DataError(f"unknown database {db!r} in the MEGC2019 list", where)
        if str(label).strip() not in {"0", "1", "2"}:
            raise DataError(f"label {label!r} is not 0, 1 or 2", where)
        subject, sample = release_names(db, subject, video)
        rows.append({"dataset": db, "subject": subject, "sample": sample,
                     "label": int(label), "emotion": CLASSES[int(label)]})
    return pd.DataFrame(rows)


def _part_root(root: Path, part: str) -> Path:
    for child in root.iterdir() if root.is_dir() else ():
        if child.is_dir() and child.name.lower() == part:
            return child
    raise DataError(f"no {part} folder under {root}", Where(part),
                    hint="pass roots={'casme2': ..., 'samm': ..., 'smic': ...}")


def load(
    root: str | Path,
    sheet: str | Path | None = None,
    *,
    diagnostics: Diagnostics | None = None,
    roots: Mapping[str, str | Path] | None = None,
    sheets: Mapping[str, str | Path | None] | None = None,
    parts: Sequence[str] = PARTS,
    missing: Missing = "error",
    **options: object,
) -> pd.DataFrame:
    """Load the MEGC2019 composite from the raw releases, selected by the official list.

    Args:
        root: a folder holding ``casme2/``, ``samm/`` and ``smic/`` release folders (any case) and, unless
            ``sheet`` is given, ``combined_3class_gt.csv``.
        sheet: the official list ``combined_3class_gt.csv``.
        roots: per-part release folders, overriding ``root/<part>``.
        sheets: per-part annotation sheets (``None`` or absent: each loader finds its own).
        parts: which parts to load (all three by default).
        missing: missing-frames policy passed to the part loaders and applied to listed samples that are not in
            a part's table (``"error"`` raises; ``"drop"``/``"keep"`` skip and count them).
        options: passed to every part loader (``layout``, ``invalid``, ...).

    Returns:
        The sample table (``dataset`` is the part's name); ``attrs["layout"]`` summarises the releases read
        and ``attrs["layouts"]`` maps part -> ``"raw"``/``"cropped"``. ``get_scheme("megc2019-3class")``
        applied to it reproduces the official labels.

    Raises:
        DataError: the list or a release is missing, a listed sample is absent (``missing="error"``), or a
            sample's emotion disagrees with the official label.
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    root = Path(root)
    listed = read_sheet(sheet if sheet is not None else find_sheet(root, SHEET_PATTERNS, DATASET))
    roots, sheets = dict(roots or {}), dict(sheets or {})
    tables = {}
    for part in parts:
        if part not in PARTS:
            raise DataError(f"unknown MEGC2019 part {part!r}; use {PARTS}")
        part_root = Path(roots[part]) if part in roots else _part_root(root, part)
        tables[part] = _LOADERS[part](part_root, sheets.get(part), diagnostics=diagnostics, missing=missing,
                                      **options)
    return select(listed, tables, missing=missing, diagnostics=diagnostics)


def select(listed: pd.DataFrame, tables: Mapping[str, pd.DataFrame], *, missing: Missing = "error",
           diagnostics: Diagnostics | None = None) -> pd.DataFrame:
    """Pick the samples of the official list out of the parts' sample tables, in the list's order.

    Args:
        listed: :func:`read_sheet` of ``combined_3class_gt.csv``.
        tables: part name -> that part's sample table (from its loader, or sheet-only from
            :func:`merkit.datasets.registry.sheet_table`); only these parts are selected.
        missing: a listed sample that is not in its table raises (``"error"``) or is skipped and counted.

    Raises:
        DataError: a listed sample is absent (``missing="error"``), or its emotion disagrees with the official
            label under the ``megc2019-3class`` scheme.
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    scheme = get_scheme("megc2019-3class")
    chosen, layouts = [], {}
    listed = listed.reset_index(drop=True)
    for part, table in tables.items():
        layouts[part] = table.attrs.get("layout", "")
        index = {(s, n): i for i, (s, n) in enumerate(zip(table["subject"], table["sample"]))}
        keep, order = [], []
        for list_position, row in listed[listed["dataset"] == part].iterrows():
            where = Where(part, row["subject"], row["sample"])
            position = index.get((row["subject"], row["sample"]))
            if position is None:
                if missing == "error":
                    raise DataError("a sample of the official list is not in the loaded release", where)
                diagnostics.warn("dropped-missing-sample", "listed in combined_3class_gt.csv but not loaded", where)
                continue
            emotion = table["emotion"].iloc[position]
            if scheme.label_of(emotion) != row["label"]:
                raise DataError(f"emotion {emotion!r} disagrees with the official label {row['label']} "
                                f"({CLASSES[row['label']]})", where)
            keep.append(position)
            order.append(list_position)
        chosen.append(table.iloc[keep].assign(_list_position=order))
    combined = pd.concat(chosen, ignore_index=True).sort_values("_list_position", kind="stable")
    combined = validate_sample_table(combined.drop(columns="_list_position").reset_index(drop=True))
    combined.attrs["layouts"] = layouts
    combined.attrs["layout"] = ", ".join(f"{part}: {kind}" for part, kind in layouts.items())
    combined.attrs["release"] = "; ".join(f"{part}: {t.attrs.get('release', '')}" for part, t in tables.items())
    return combined

"""The sample table: the one schema every dataset loader produces and every later stage consumes.

A sample table is a :class:`pandas.DataFrame` with one row per micro-expression sample and these columns:

==============  ======================================================================================
``sample_id``   unique id ``"<dataset>/<subject>/<sample>"``, carried through every stage; predictions are
                joined to labels by this id, never by position
``dataset``     short dataset name: ``casme2``, ``samm``, ``smic``, ``casme3``, ``mmew``, ``4dme``, ...
``subject``     the subject as the release names it (``sub01``, ``006``, ``s1``)
``subject_id``  ``"<dataset>/<subject>"``: the key of leave-one-subject-out folds, qualified by dataset so that
                ``casme2/sub01`` and ``smic/s01`` can never merge
``sample``      the sample (video) name within the subject (``EP02_01f``, ``006_1_2``, ``s1_ne_01``)
``emotion``     the dataset's emotion label, lower case (``happiness``, ``negative``, ...)
``onset``       onset frame number (int, as in the sheet; nullable)
``apex``        apex frame number (nullable: SMIC has none; see the loader for the fallback)
``offset``      offset frame number (nullable)
``action_units`` FACS action units as annotated, e.g. ``"4+7"`` (str, may be empty)
``frames``      list of frame paths sorted by frame number (raw datasets; empty list for precomputed ones)
==============  ======================================================================================

Ids are normalised where rows enter the table (:func:`new_sample_table`, which every loader and the composite
reader use): ``dataset``, ``subject`` and ``sample`` are stripped of surrounding whitespace and put in Unicode
normal form NFC (:func:`normalise_id`), so that ``"sub12 "`` and ``"sub12"``, or a name typed in NFD and in NFC,
are one subject and never end up on both sides of a LOSO fold. Each id that changed is a counted warning
(``id-normalised``).

Class labels are not part of the table: a :class:`~merkit.datasets.schemes.ClassScheme` maps ``emotion`` to an
integer ``label`` column (:meth:`ClassScheme.apply`), so one table serves several class schemes.
"""

from __future__ import annotations

import unicodedata

import pandas as pd

from merkit.errors import DataError, Diagnostics, Where

#: The id columns :func:`new_sample_table` normalises, outermost first.
ID_COLUMNS: tuple[str, ...] = ("dataset", "subject", "sample")

SAMPLE_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "dataset",
    "subject",
    "subject_id",
    "sample",
    "emotion",
    "onset",
    "apex",
    "offset",
    "action_units",
    "frames",
)


def subject_id(dataset: str, subject: str) -> str:
    """The dataset-qualified subject id, e.g. ``subject_id("casme2", "sub01") == "casme2/sub01"``."""
    return f"{dataset}/{subject}"


def sample_id(dataset: str, subject: str, sample: str) -> str:
    """The unique sample id, e.g. ``"casme2/sub01/EP02_01f"``."""
    return f"{dataset}/{subject}/{sample}"


def normalise_id(value: object) -> str:
    r"""An id part as merkit keys it: ``str(value)`` without surrounding whitespace, in Unicode NFC.

    ``normalise_id(" sub12\t") == "sub12"``; ``normalise_id("Jose\u0301") == "Jos\u00e9"``.
    """
    return unicodedata.normalize("NFC", str(value).strip())


def normalise_ids(df: pd.DataFrame, diagnostics: Diagnostics) -> pd.DataFrame:
    """``df`` with its ``dataset``, ``subject`` and ``sample`` columns put through :func:`normalise_id`.

    Each distinct id that changed is one ``id-normalised`` warning in ``diagnostics``, naming it as written: a
    dataset name, a subject name within its (normalised) dataset, a sample name within its (normalised) subject.

    Raises:
        DataError: an id cell is empty (null); or two rows whose sample ids differ as written become one sample id
            (the message names both).
    """
    for column in ID_COLUMNS:
        empty = df.index[df[column].isna()]
        if len(empty):
            row = df.loc[empty[0]]
            raise DataError(f"row {empty[0]} has no {column} name", Where(*(
                None if pd.isna(row[c]) else str(row[c]) for c in ID_COLUMNS)), hint="every row needs a dataset, "
                "subject and sample name")
    raw = [[str(v) for v in df[c]] for c in ID_COLUMNS]
    norm = [[normalise_id(v) for v in values] for values in raw]
    seen: dict[str, str] = {}
    changed: dict[tuple[str, ...], Where] = {}
    for (rd, rs, rn), (d, s, n) in zip(zip(*raw), zip(*norm)):
        for what, before, after in zip(ID_COLUMNS, (rd, rs, rn), (d, s, n)):
            if not after:  # blank: refused as written, not warned about as normalised
                check_id_part(before, what, Where(rd, rs, rn))
        key, written = sample_id(d, s, n), sample_id(rd, rs, rn)
        if seen.setdefault(key, written) != written:
            raise DataError(f"sample ids {seen[key]!r} and {written!r} are one id, {key!r}, once stripped and "
                            "NFC-normalised", Where(d, s, n), hint="rename one of the two samples")
        if rd != d:
            changed.setdefault(("dataset", rd), Where(d))
        if rs != s:
            changed.setdefault(("subject", d, rs), Where(d, s))
        if rn != n:
            changed.setdefault(("sample", d, s, rn), Where(d, s, n))
    for (what, *_, before), where in changed.items():
        diagnostics.warn("id-normalised", f"{what} name {before!r} read as {normalise_id(before)!r} (surrounding "
                         "whitespace stripped, Unicode NFC)", where)
    out = df.copy()
    for column, values in zip(ID_COLUMNS, norm):
        out[column] = values
    return out


def new_sample_table(rows: list[dict], diagnostics: Diagnostics | None = None) -> pd.DataFrame:
    """Build a sample table from dicts holding at least ``dataset, subject, sample, emotion``.

    ``dataset``, ``subject`` and ``sample`` are normalised (:func:`normalise_ids`; each changed id is a counted
    ``id-normalised`` warning in ``diagnostics``); ``sample_id`` and ``subject_id`` are derived from the normalised
    parts; missing optional columns are filled with nulls (frames: ``[]``). The result is validated with
    :func:`validate_sample_table`.

    Raises:
        DataError: a required column is missing, two sample ids differ only by whitespace or normal form, or
            :func:`validate_sample_table` fails.
    """
    df = pd.DataFrame(rows)
    for col in ("dataset", "subject", "sample", "emotion"):
        if col not in df.columns:
            raise DataError(f"sample rows lack the required column {col!r}")
    df = normalise_ids(df, diagnostics if diagnostics is not None else Diagnostics())
    df["emotion"] = df["emotion"].astype(str).str.strip().str.lower()
    df["subject_id"] = [subject_id(d, s) for d, s in zip(df["dataset"], df["subject"])]
    df["sample_id"] = [sample_id(d, s, n) for d, s, n in zip(df["dataset"], df["subject"], df["sample"])]
    for col in ("onset", "apex", "offset"):
        df[col] = pd.array(df[col] if col in df.columns else [None] * len(df), dtype="Int64")
    if "action_units" not in df.columns:
        df["action_units"] = ""
    df["action_units"] = df["action_units"].fillna("").astype(str)
    if "frames" not in df.columns:
        df["frames"] = [[] for _ in range(len(df))]
    extra = [c for c in df.columns if c not in SAMPLE_COLUMNS]
    df = df[list(SAMPLE_COLUMNS) + extra].reset_index(drop=True)
    return validate_sample_table(df)


#: Characters an id part may not hold: ids name folders and files of runs and caches, and ``/`` joins the parts.
FORBIDDEN_ID_CHARACTERS = ("/", "\\", "\0")


def check_id_part(value: object, what: str, where: Where) -> None:
    """Raise :class:`DataError` unless ``value`` is a non-empty id part without path separators.

    Raises:
        DataError: an empty (or blank) value, or one holding ``/``, ``\\`` or a NUL; the message names it.
    """
    text = str(value)
    if not text.strip() or text in (".", ".."):
        raise DataError(f"the {what} name {text!r} is empty or a path component", where,
                        hint="every dataset, subject and sample needs a name")
    bad = [c for c in FORBIDDEN_ID_CHARACTERS if c in text]
    if bad:
        raise DataError(f"the {what} name {text!r} holds {bad[0]!r}, a path separator", where,
                        hint=f"ids name run and cache files; rename the {what} without {bad[0]!r}")


def validate_sample_table(df: pd.DataFrame) -> pd.DataFrame:
    """Check the schema and the invariants of a sample table; return it unchanged.

    Raises:
        DataError: a column is missing; a dataset, subject or sample name is empty, holds a path separator or is
            not normalised (:func:`normalise_id`: surrounding whitespace, or not Unicode NFC); a ``sample_id`` is
            duplicated; ``subject_id`` is not qualified by the dataset; onset, apex and offset
            are out of order (``onset <= apex <= offset`` where all are known). The message names the sample.
    """
    missing = [c for c in SAMPLE_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"sample table lacks columns {missing}")
    for row in df.itertuples(index=False):
        where = Where(row.dataset, row.subject, row.sample)
        for what in ID_COLUMNS:
            check_id_part(getattr(row, what), what, where)
            if getattr(row, what) != normalise_id(getattr(row, what)):
                raise DataError(f"the {what} name {getattr(row, what)!r} is not normalised (stripped, Unicode NFC)",
                                where, hint="build sample tables with new_sample_table, which normalises ids")
    dup = df["sample_id"][df["sample_id"].duplicated()].tolist()
    if dup:
        raise DataError(f"duplicate sample ids: {dup[:5]}{' ...' if len(dup) > 5 else ''}")
    for row in df.itertuples(index=False):
        where = Where(row.dataset, row.subject, row.sample)
        if row.subject_id != subject_id(row.dataset, row.subject):
            raise DataError(f"subject_id {row.subject_id!r} is not qualified by its dataset", where)
        onset, apex, offset = row.onset, row.apex, row.offset
        if not (pd.isna(onset) or pd.isna(offset)) and onset > offset:
            raise DataError(f"onset {onset} is after offset {offset}", where)
        if not (pd.isna(apex) or pd.isna(onset) or pd.isna(offset)) and not onset <= apex <= offset:
            raise DataError(f"apex {apex} lies outside [onset {onset}, offset {offset}]", where)
    return df

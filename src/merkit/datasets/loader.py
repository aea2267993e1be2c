"""One loader for every dataset that ships a coding sheet and a folder per sample: a dataset is a
:class:`DatasetSpec` (its sheet's columns, where its frames lie, its annotation fixes) and :func:`load` runs it.

Loading is the same five steps for CASME II, SAMM, CAS(ME)^3, MMEW and 4DME: find the release folder
(:func:`~merkit.datasets.frames.find_release`), read the sheet (:func:`read_sheet`), apply the fixes and policies
(:func:`~merkit.datasets.fixes.prepare`), attach each sample's frames
(:func:`~merkit.datasets.frames.attach_frames`) and build the sample table
(:func:`~merkit.datasets.frames.sample_table`). What differs between datasets is data, held by the spec; the few
steps that are not (SAMM's header row after free text, CAS(ME)^3's sample names, 4DME's combined emotions) are
small hooks on :class:`SheetSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from string import Formatter
from typing import Callable, Literal, Mapping

import pandas as pd

from merkit.datasets.fixes import Fix, Invalid, MissingApex, prepare
from merkit.datasets.frames import LayoutChoice, Missing, attach_frames, find_release, find_sheet, sample_table
from merkit.errors import DataError, Diagnostics, Where

# SAMM's v2 sheet puts its header on spreadsheet row 14; look well past it, but not through the whole sheet.
_HEADER_SEARCH_ROWS = 60


def stripped(value: object) -> str:
    """The cell's text without surrounding blanks: the subject name of a sheet that writes it as the folders do."""
    return str(value).strip()


@dataclass(frozen=True)
class SheetSpec:
    """How a dataset's coding sheet (.xlsx/.xls, or a .csv with the same columns) becomes annotation rows.

    Attributes:
        columns: official column -> table column, in the order the rows keep; it must give ``subject``,
            ``emotion``, ``onset``, ``apex``, ``offset``, ``action_units`` and ``sample`` (or what
            ``name_samples`` builds it from).
        keys: the official columns that name a sample; rows where they are empty are blank and dropped.
        blank_if: a row is blank when ``"any"`` or when ``"all"`` of ``keys`` are empty.
        aliases: other spellings of official columns (cleaned copies of a sheet) -> the official name.
        defaults: official columns a sheet may lack -> the value they take then.
        optional: official column -> table column, kept (empty cells as ``""``) where the sheet has it.
        subject_name: the sheet's subject cell -> the name of the subject's folder; raises DataError.
        header_cells: where the header row follows free text (SAMM), the cells it starts with; it is looked for
            by content in the first rows of a spreadsheet. Empty: the first row is the header.
        name_samples: builds the ``sample`` column from the mapped rows where the sheet has no unique sample name.
        emotion_names: rewrites the lower-cased emotions where a dataset spells them its own way.
    """

    columns: Mapping[str, str]
    keys: tuple[str, ...] = ("Subject", "Filename")
    blank_if: Literal["any", "all"] = "any"
    aliases: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)
    optional: Mapping[str, str] = field(default_factory=dict)
    subject_name: Callable[[object], str] = stripped
    header_cells: tuple[str, ...] = ()
    name_samples: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    emotion_names: Callable[[pd.Series], pd.Series] | None = None


@dataclass(frozen=True)
class FrameLayout:
    """Where a sample's frames lie below the release folder.

    Attributes:
        folder: the sample's frame folder, a :meth:`str.format` pattern over the row's columns and the load
            options (``"{subject}/{clip}/{modality}"``). A ``folder_template`` load option replaces it.
        window: the folder holds a whole video; the sample's frames are those in [onset, offset].
        by_name: the sample folder lies under a folder the sheet may spell otherwise (MMEW's emotion folders),
            so it is looked up by its name one level below the release folder; ``folder`` is the fallback.
    """

    folder: str = "{subject}/{sample}"
    window: bool = False
    by_name: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset release described as data: what :func:`load` and :func:`read_sheet` need to read it.

    Attributes:
        name: registry and table name (``"casme2"``). title: the dataset's name in listings.
        label: the dataset's name in messages; ``title`` when empty.
        emotions: the emotion vocabulary of the sheet, lower case.
        sheet: the coding sheet's columns and quirks. sheet_patterns: globs of the sheet's file name.
        folder_pattern: regular expression that the release folder's children (subject folders, or MMEW's
            emotion folders) fully match. containers: folders below a root that may hold the release folder.
        frames: where a sample's frames lie. fixes: the annotation fixes the loader applies by default.
        schemes: the class schemes made for the dataset.
        options: the dataset's own load options and their defaults (CAS(ME)^3's ``modality``).
    """

    name: str
    title: str
    emotions: frozenset[str]
    sheet: SheetSpec
    sheet_patterns: tuple[str, ...]
    folder_pattern: str
    containers: tuple[str, ...] = ()
    frames: FrameLayout = FrameLayout()
    fixes: tuple[Fix, ...] = ()
    schemes: tuple[str, ...] = ()
    options: Mapping[str, object] = field(default_factory=dict)
    label: str = ""

    @property
    def called(self) -> str:
        """How messages name the dataset."""
        return self.label or self.title


def _read_grid(spec: DatasetSpec, path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=object)
    cells = spec.sheet.header_cells
    if not cells:
        return pd.read_excel(path, dtype=object)
    grid = pd.read_excel(path, header=None, dtype=object)
    header = [i for i in range(min(len(grid), _HEADER_SEARCH_ROWS))
              if [str(c).strip() for c in grid.iloc[i, :len(cells)]] == list(cells)]
    if not header:
        raise DataError(f"{path.name}: no header row starting {' | '.join(cells)!r} in the first "
                        f"{_HEADER_SEARCH_ROWS} rows", Where(spec.name))
    table = grid.iloc[header[0] + 1:].copy()
    table.columns = [str(c).strip() for c in grid.iloc[header[0]]]
    return table


def read_sheet(spec: DatasetSpec, path: str | Path) -> pd.DataFrame:
    """Read a dataset's coding sheet into annotation rows, as ``spec.sheet`` describes it.

    Returns:
        One row per sample: the table columns of ``spec.sheet.columns`` in their order (``subject`` named like
        the subject folders, ``sample`` stripped, ``emotion`` lower case, ``action_units`` a string, frame cells
        as in the sheet: ints or ``"/"``), then ``sample`` where ``name_samples`` builds it, then the optional
        columns the sheet has.

    Raises:
        DataError: the file is missing, has no header row (where one is looked for), lacks one of the official
            columns, or names a subject the dataset's ``subject_name`` rejects. Messages name the dataset and file.
    """
    sheet = spec.sheet
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{spec.called} sheet not found: {path}", Where(spec.name))
    raw = _read_grid(spec, path)
    raw.columns = [sheet.aliases.get(str(c).strip(), str(c).strip()) for c in raw.columns]
    for column, value in sheet.defaults.items():
        if column not in raw.columns:
            raw[column] = value
    absent = [c for c in sheet.columns if c not in raw.columns]
    if absent:
        raise DataError(f"{path.name} lacks the {spec.called} columns {absent}", Where(spec.name))
    raw = raw.dropna(subset=list(sheet.keys), how=sheet.blank_if)
    rows = raw[list(sheet.columns)].rename(columns=dict(sheet.columns))
    rows["subject"] = [sheet.subject_name(s) for s in rows["subject"]]
    if sheet.name_samples is not None:
        rows = sheet.name_samples(rows)
    else:
        rows["sample"] = rows["sample"].astype(str).str.strip()
    rows["emotion"] = rows["emotion"].astype(str).str.strip().str.lower()
    if sheet.emotion_names is not None:
        rows["emotion"] = sheet.emotion_names(rows["emotion"])
    rows["action_units"] = rows["action_units"].fillna("").astype(str).str.strip()
    for column, name in sheet.optional.items():
        if column in raw.columns:
            rows[name] = raw[column].fillna("").astype(str).str.strip()
    return rows.reset_index(drop=True)


def _chosen_options(spec: DatasetSpec, given: Mapping[str, object]) -> dict[str, object]:
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        takes = ", ".join(sorted(spec.options)) or "none"
        raise TypeError(f"the {spec.name} loader takes no option {', '.join(unknown)} (its own options: {takes})")
    return {**spec.options, **given}


def _samples_by_name(spec: DatasetSpec, base: Path) -> dict[str, Path]:
    """Sample folders one level below ``base``'s folders, by name.

    Raises:
        DataError: a sample folder name occurs under two folders (which one the sheet means is unknown).
    """
    folders: dict[str, Path] = {}
    for parent in (p for p in base.iterdir() if p.is_dir()):
        for sample_dir in (p for p in parent.iterdir() if p.is_dir()):
            if sample_dir.name in folders:
                raise DataError(f"{sample_dir.name} occurs in {folders[sample_dir.name].parent.name} and "
                                f"{parent.name}", Where(spec.name, sample=sample_dir.name))
            folders[sample_dir.name] = sample_dir
    return folders


def _folder_finder(spec: DatasetSpec, base: Path, rows: pd.DataFrame,
                   options: Mapping[str, object]) -> Callable[[dict], Path]:
    """The function from a row to its frame folder.

    Raises:
        DataError: the folder pattern names a field that is neither a column nor a load option, or (``by_name``)
            a sample folder name occurs twice.
    """
    pattern = str(options.get("folder_template", spec.frames.folder))
    known = (set(rows.columns) | set(options)) - {"folder_template"}
    # A field may be "subject", "subject.upper" or "row[0]"; what must exist is the name before "." or "[".
    fields = {name.split(".")[0].split("[")[0] for _, name, _, _ in Formatter().parse(pattern) if name is not None}
    if fields - known:
        raise DataError(f"frame folder pattern {pattern!r} names {sorted(fields - known)}, which are neither "
                        f"columns nor options; it may use {sorted(known)}", Where(spec.name))
    by_name = _samples_by_name(spec, base) if spec.frames.by_name else {}

    def folder_of(row: dict) -> Path:
        if row["sample"] in by_name:
            return by_name[row["sample"]]
        return base / pattern.format_map({**row, **options})

    return folder_of


def load(
    spec: DatasetSpec,
    root: str | Path,
    sheet: str | Path | None = None,
    *,
    diagnostics: Diagnostics | None = None,
    layout: LayoutChoice = "auto",
    fixes: tuple[Fix, ...] | None = None,
    missing_apex: MissingApex = "midpoint",
    invalid: Invalid = "error",
    missing: Missing = "error",
    **options: object,
) -> pd.DataFrame:
    """Load the release of the dataset ``spec`` describes as a sample table (each sample's frames sorted by
    frame number).

    Args:
        spec: the dataset.
        root: the release folder (holding the subject folders) or a parent holding it under one of
            ``spec.containers``.
        sheet: the coding sheet; by default the one matching ``spec.sheet_patterns`` in ``root`` (2 levels deep)
            or beside it.
        diagnostics: collects the counted warnings (fixes, filled apexes, dropped samples).
        layout: ``"auto"``, ``"raw"`` or ``"cropped"``; see :func:`~merkit.datasets.frames.find_release`.
        fixes: annotation fixes; ``None`` applies ``spec.fixes``.
        missing_apex: what to do with an apex of ``/`` (:func:`~merkit.datasets.fixes.fill_missing_apex`).
        invalid: ``"error"`` or ``"drop"`` for duplicate ids and out-of-order onset/apex/offset.
        missing: ``"error"``, ``"drop"`` or ``"keep"`` for samples without frames.
        options: the dataset's own options (``spec.options``: CAS(ME)^3's ``modality``, 4DME's
            ``folder_template``).

    Returns:
        The sample table; ``attrs["layout"]`` says whether the raw or the cropped release was read.

    Raises:
        TypeError: an option the dataset does not take.
        DataError: no release or sheet is found, the sheet is malformed, a fix no longer matches, the frame folder
            pattern names an unknown field, a sample folder name occurs twice (``by_name``), or a sample is
            invalid or lacks frames (under the default policies). Messages name the dataset, subject and sample.
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    chosen = _chosen_options(spec, options)
    release = find_release(root, spec.name, spec.folder_pattern, spec.containers, layout)
    rows = read_sheet(spec, sheet if sheet is not None else find_sheet(root, spec.sheet_patterns, spec.name))
    rows = prepare(rows, spec.name, spec.fixes if fixes is None else fixes, missing_apex=missing_apex,
                   invalid=invalid, diagnostics=diagnostics)
    rows = attach_frames(rows, spec.name, _folder_finder(spec, release.base, rows, chosen), missing=missing,
                         window=spec.frames.window, diagnostics=diagnostics)
    return sample_table(rows, spec.name, release, diagnostics)

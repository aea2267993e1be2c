"""Validate a composite-format flow folder and report everything wrong with it, without stopping at the first problem.

A flow folder is what ``data.kind: flow_folder`` reads (:func:`merkit.inputs.composite.read_composite`) and what
``merkit export-flow`` writes: ``manifest.csv`` and the images it names. :func:`check_flow_folder` lists:

* ``manifest``: a required column absent, an empty cell, a label that is not an integer;
* ``missing file`` / ``damaged file``: an image the manifest names that is not there, or that does not decode to
  its last byte (:func:`merkit.media.verify_image`, which finds the truncated JPEGs OpenCV reads without an error),
  is not 8-bit (:func:`merkit.media.read_8bit_image`) or has the wrong number of channels;
* ``wrong size``: a flow or apex image of another size than the benchmark's (28 and 224 px for the MEGC2019
  composite), else the folder's record's (``export.json``), else the first one's;
* ``label``: an emotion the class scheme does not know, or a label that disagrees with it;
* ``duplicate id`` and ``unknown dataset`` (a row of a dataset the benchmark has no part for);
* ``count``: samples, subjects and samples per class, in full and per part, that differ from the benchmark's
  (:data:`merkit.datasets.megc2019.COMPOSITE`); each line gives both numbers;
* ``sheet``: with an official annotation sheet, what differs from it (:func:`compare_sheet`).

``merkit datasets check megc2019-composite --root DIR [--sheet FILE]`` prints it (also ``megc2019`` with a root
that holds ``manifest.csv``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from merkit.datasets.check import Findings
from merkit.datasets.megc2019 import COMPOSITE, Benchmark, Counts
from merkit.datasets.table import normalise_id, sample_id
from merkit.errors import ConfigError, DataError
from merkit.inputs.composite import MANIFEST_COLUMNS, REQUIRED_COLUMNS, folder_record, label_problem, manifest_line

FOLDER_PROBLEMS: tuple[str, ...] = ("manifest", "missing file", "damaged file", "wrong size", "label", "duplicate id",
                                    "unknown dataset", "count", "sheet")
#: Benchmarks whose released flow folder a check can be held against, by name.
BENCHMARKS: dict[str, Benchmark] = {COMPOSITE.name: COMPOSITE}
DEFAULT_SCHEME = COMPOSITE.scheme


@dataclass
class FolderReport(Findings):
    """What :func:`check_flow_folder` found.

    Attributes:
        root: the folder. benchmark: the benchmark's name, or ``None``. scheme: the class scheme the labels follow.
        record: how the images were made (``export.json``), or a note that the folder has no record.
        samples: rows of the manifest.
        problems: ``(kind, what, message)``: a kind of :data:`FOLDER_PROBLEMS`, the file (relative to ``root``)
            or sample id it is about, and what is wrong (naming the sample where the finding is about a file).
        counts: ``(what, in the folder, in the benchmark or None)``, in full and per part.
        sheet: one line on the comparison with ``--sheet``, or ``""``.
    """

    root: str
    benchmark: str | None
    scheme: str
    record: str
    samples: int
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    counts: list[tuple[str, int, int | None]] = field(default_factory=list)
    sheet: str = ""

    def to_text(self, max_listed: int = 20) -> str:
        """A plain-text report (what the CLI prints): every problem on one line naming its file or sample."""
        lines = [f"folder    {self.root} (flow folder: manifest.csv)",
                 f"benchmark {self.benchmark or 'none'}", f"scheme    {self.scheme}", f"record    {self.record}",
                 f"samples   {self.samples}", "", "problems"]
        lines += [f"  {kind:<24} {self.count(kind)}" for kind in FOLDER_PROBLEMS]
        lines += [f"    - {kind}: {what}: {message}" for kind, what, message in self.problems[:max_listed]]
        if len(self.problems) > max_listed:
            lines.append(f"    ... and {len(self.problems) - max_listed} more (--max-listed)")
        expected = self.benchmark or "expected"
        lines += ["", f"  {'counts':<28} {'folder':>7} {expected:>20}"]
        lines += [f"  {what:<28} {n:>7} {'' if m is None else m:>20}" for what, n, m in self.counts]
        if self.sheet:
            lines += ["", f"sheet     {self.sheet}"]
        lines += ["", "OK" if self.ok else f"{len(self.problems)} problem(s)"]
        return "\n".join(lines)


@dataclass
class _Row:
    """One usable manifest row: its position, ids, label and paths."""

    line: int
    dataset: str
    subject: str
    sample: str
    label: int
    emotion: str
    flow: str
    apex: str | None

    @property
    def sample_id(self) -> str:
        return sample_id(self.dataset, self.subject, self.sample)


def _read_manifest(root: Path) -> pd.DataFrame:
    """``root/manifest.csv`` as strings, or a :class:`DataError` when it cannot be read as CSV at all."""
    path = root / "manifest.csv"
    if not root.is_dir():
        raise DataError(f"flow folder not found: {root}", hint="--root names the folder that holds manifest.csv")
    if not path.is_file():
        raise DataError(f"no manifest.csv in {root}", hint="a flow folder holds manifest.csv with columns "
                        + ", ".join(MANIFEST_COLUMNS) + " and the images it names")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as error:
        raise DataError(f"{path} is empty") from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not a readable CSV file: {str(error).splitlines()[0]}") from error


def _rows(df: pd.DataFrame, cls, parts: set[str] | None, problems: list) -> list[_Row]:
    """The manifest's rows that can be checked further; the problems of the others (and of the labels, ids and
    datasets of all) appended to ``problems``."""
    rows, seen = [], {}
    for position, values in enumerate(df.to_dict("records")):
        line = manifest_line(position)
        ids = [normalise_id(values.get(c, "")) for c in ("dataset", "subject", "sample")]
        name = sample_id(*ids) if all(ids) else f"manifest.csv line {line}"
        empty = [c for c in REQUIRED_COLUMNS if not str(values.get(c, "")).strip()]
        if empty:
            problems.append(("manifest", name, f"line {line}: the {empty[0]!r} cell is empty"))
            continue
        label = pd.to_numeric(pd.Series([values["label"]]), errors="coerce").iloc[0]
        if pd.isna(label) or label != int(label):
            problems.append(("manifest", name, f"line {line}: label {values['label']!r} is not a class index"))
            continue
        if name in seen:
            problems.append(("duplicate id", name, f"lines {seen[name]} and {line} name the same sample"))
            continue
        seen[name] = line
        if parts is not None and ids[0] not in parts:
            problems.append(("unknown dataset", name, f"line {line}: dataset {ids[0]!r} is not one of {sorted(parts)}"))
        wrong = label_problem(int(label), values["emotion"], cls)
        if wrong is not None:
            problems.append(("label", name, f"line {line}: {wrong[0]}" + (f" ({wrong[1]})" if wrong[1] else "")))
        apex = str(values.get("apex", "")).strip() or None
        rows.append(_Row(line, *ids, int(label), values["emotion"], values["flow"].strip(), apex))
    return rows


def _check_image(root: Path, relative: str, row: _Row, grey: bool, side: list, what: str,
                 problems: list) -> None:
    """Check one image of ``row``: present, decodable to its last byte, 8-bit, 3 channels for flow, and of size
    ``side[0]`` (set from this image when ``side[0]`` is ``None``); problems appended to ``problems``."""
    from merkit.media import read_8bit_image, verify_image

    path = root / relative
    label = f"{relative} ({row.sample_id})"
    if not path.is_file():
        problems.append(("missing file", label, f"{what} image not found (manifest.csv line {row.line})"))
        return
    try:
        verify_image(path)
        image = read_8bit_image(path, grey=grey)
    except DataError as error:
        problems.append(("damaged file", label, str(error.__cause__ or error).split(" -- ")[0]))
        return
    if not grey and (image.ndim != 3 or image.shape[2] != 3):
        channels = 1 if image.ndim == 2 else image.shape[2]
        problems.append(("damaged file", label, f"{what} image has {channels} channel(s), expected 3 (u, v, strain)"))
        return
    if side[0] is None:
        side[0], side[1] = image.shape[:2], f"the first {what} image, {relative}"
    elif image.shape[:2] != side[0]:
        problems.append(("wrong size", label, f"{what} image is {image.shape[0]}x{image.shape[1]} px, expected "
                         f"{side[0][0]}x{side[0][1]} ({side[1]})"))


def _expected_sides(benchmark: Benchmark | None, record) -> tuple[list, list]:
    """``[(H, W) or None, why]`` for the flow and the apex images: the benchmark's sizes, else the record's."""
    if benchmark is not None:
        why = f"{benchmark.name}'s images"
        return [(benchmark.flow_size,) * 2, why], [(benchmark.apex_size,) * 2, why]
    if record is not None:
        flow = [(record.motion.size,) * 2, "the record's data.motion.size"] if record.motion.size else [None, ""]
        return flow, [(record.face.size,) * 2, "the record's data.face.size"]
    return [None, ""], [None, ""]


def _counts(rows: list[_Row], classes: tuple[str, ...]) -> Counts:
    per_class = {c: 0 for c in classes}
    for row in rows:
        if 0 <= row.label < len(classes):
            per_class[classes[row.label]] += 1
    return Counts(len(rows), len({(r.dataset, r.subject) for r in rows}), per_class)


def _compare_counts(rows: list[_Row], benchmark: Benchmark | None, classes: tuple[str, ...],
                    problems: list) -> list[tuple[str, int, int | None]]:
    """The folder's counts beside the benchmark's (in full and per part); every difference is a ``count`` problem
    naming both numbers."""
    scopes = {"all": (rows, benchmark.total if benchmark else None)}
    datasets = sorted({r.dataset for r in rows} | set(benchmark.parts if benchmark else ()))
    for dataset in datasets:
        part = benchmark.parts.get(dataset) if benchmark else None
        scopes[dataset] = ([r for r in rows if r.dataset == dataset], part)
    table = []
    for scope, (members, expected) in scopes.items():
        have = _counts(members, classes)
        pairs = [("samples", have.samples, expected.samples if expected else None),
                 ("subjects", have.subjects, expected.subjects if expected else None)]
        pairs += [(c, have.per_class[c], expected.per_class.get(c, 0) if expected else None) for c in classes]
        for what, n, m in pairs:
            table.append((f"{scope} {what}", n, m))
            if benchmark is not None and n != m:
                problems.append(("count", scope, f"{what}: {n} in the folder, {m} in {benchmark.name}"))
    return table


def sheet_dataset(path: Path) -> str:
    """Which dataset's official sheet ``path`` is, from its file name: ``megc2019`` for ``combined_3class_gt.csv``,
    else the dataset whose sheet patterns (:class:`merkit.datasets.loader.DatasetSpec`) match.

    Raises:
        ConfigError: the name matches no dataset's sheet; the message lists the names expected.
    """
    from merkit.datasets import megc2019
    from merkit.datasets.registry import DATASETS

    patterns = {"megc2019": megc2019.SHEET_PATTERNS}
    patterns.update({e.name: e.spec.sheet_patterns for e in DATASETS.values() if e.spec is not None})
    for name, globs in patterns.items():
        if any(fnmatch.fnmatch(path.name.lower(), g.lower()) for g in globs):
            return name
    listed = "; ".join(f"{name}: {', '.join(globs)}" for name, globs in patterns.items())
    raise ConfigError(f"cannot tell which dataset's official sheet {path.name} is: its name matches none of {listed}")


def _release_id(row: _Row) -> tuple[str, str, str]:
    """A row's id in the releases' spelling (SMIC ``s01`` -> ``s1``), so that it meets the sheets' rows.

    Raises:
        DataError: a MEGC2019 part's name does not follow its pattern.
    """
    from merkit.datasets.megc2019 import PARTS, release_names

    if row.dataset not in PARTS:
        return row.dataset, row.subject, row.sample
    return (row.dataset, *release_names(row.dataset, row.subject, row.sample))


def compare_sheet(rows: list[_Row], sheet: Path, cls, problems: list) -> str:
    """Compare the folder's rows with an official annotation sheet; return the one-line summary.

    * The MEGC2019 list (``combined_3class_gt.csv``) selects the benchmark: every listed sample must be in the
      folder with the list's label, and every sample of the folder must be listed.
    * A part's own sheet (CASME II's or SAMM's coding sheet): every sample of the folder from that dataset must be
      in the sheet, and the sheet's emotion, mapped by the class scheme ``cls``, must give the folder's label. The
      sheet's other samples are counted, not reported: a benchmark selects from the sheet.

    Differences are ``sheet`` problems naming the sample. Ids are compared in the releases' spelling.

    Raises:
        ConfigError: the sheet's file name names no dataset (:func:`sheet_dataset`). DataError: it cannot be read.
    """
    from merkit.datasets.registry import read_sheet

    dataset = sheet_dataset(sheet)
    listed = read_sheet(dataset, sheet)
    if dataset != "megc2019":
        listed = listed.assign(dataset=dataset)
    ours = {}
    for row in rows:
        if dataset == "megc2019" or row.dataset == dataset:
            try:
                ours[_release_id(row)] = row
            except DataError as error:
                problems.append(("sheet", row.sample_id, str(error).split(" [")[0]))
    theirs = {(d, s, n): r for d, s, n, r in zip(listed["dataset"], listed["subject"], listed["sample"],
                                                    listed.to_dict("records"))}
    for key, row in ours.items():
        if key not in theirs:
            problems.append(("sheet", row.sample_id, f"not in {sheet.name}"))
            continue
        entry = theirs[key]
        what = f"label {entry['label']}" if dataset == "megc2019" else f"emotion {entry['emotion']!r}"
        try:
            label = entry["label"] if dataset == "megc2019" else cls.label_of(entry["emotion"])
        except DataError:
            problems.append(("sheet", row.sample_id, f"{sheet.name} gives {what}, which {cls.name} does not know"))
            continue
        if label is None:
            problems.append(("sheet", row.sample_id, f"{sheet.name} gives {what}, which {cls.name} drops"))
        elif int(label) != row.label:
            problems.append(("sheet", row.sample_id, f"label {row.label} in the folder, {sheet.name} gives {what} "
                             f"(label {label} under {cls.name})"))
    missing = sorted(theirs.keys() - ours.keys())
    if dataset == "megc2019":
        problems += [("sheet", sample_id(*key), f"listed in {sheet.name} but not in the folder") for key in missing]
    kept = sum(1 for key in missing if _kept(theirs[key]["emotion"], cls))
    if not ours:
        problems.append(("sheet", dataset, f"the folder holds no {dataset} sample to compare with {sheet.name}"))
    found = len(ours.keys() & theirs.keys())
    rest = "" if dataset == "megc2019" else f"; {kept} more in the sheet that {cls.name} keeps (not selected)"
    return f"{sheet.name} ({dataset}): {len(theirs)} rows; {found} of the folder's {len(ours)} samples found{rest}"


def _kept(emotion: object, cls) -> bool:
    """Whether the class scheme ``cls`` gives ``emotion`` a class (an emotion it does not know counts as not)."""
    try:
        return cls.label_of(emotion) is not None
    except DataError:
        return False


def check_flow_folder(root: str | Path, benchmark: str | None = COMPOSITE.name, sheet: str | Path | None = None,
                      datasets: set[str] | None = None) -> FolderReport:
    """Check a composite-format flow folder; see the module docstring for what is listed.

    Args:
        root: the folder holding ``manifest.csv``.
        benchmark: a name of :data:`BENCHMARKS` to hold the counts, parts and image sizes against, or ``None``
            (sizes then follow the folder's ``export.json``, else its first images).
        sheet: an official annotation sheet to compare the samples and labels with (:func:`compare_sheet`).
        datasets: the datasets the rows may name (default: the benchmark's parts, or any).

    Raises:
        ConfigError: unknown benchmark, or a sheet whose name names no dataset. DataError: the folder, its
            manifest or the sheet cannot be read at all, or ``export.json`` holds no readable record.
    """
    from merkit.datasets.schemes import get_scheme

    if benchmark is not None and benchmark not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {benchmark!r}; known: {sorted(BENCHMARKS)}")
    root, spec = Path(root), BENCHMARKS.get(benchmark) if benchmark else None
    df = _read_manifest(root)
    record = folder_record(root)
    scheme = _folder_scheme(root) or (spec.scheme if spec else DEFAULT_SCHEME)
    cls = get_scheme(scheme)
    report = FolderReport(str(root), benchmark, scheme, "export.json: " + record.describe() if record else
                          "none (no export.json: images made elsewhere)", len(df))
    required = [c for c in REQUIRED_COLUMNS + (("apex",) if spec else ()) if c not in df.columns]
    for column in required:
        report.problems.append(("manifest", "manifest.csv", f"the column {column!r} is absent (columns: "
                                f"{', '.join(df.columns)})"))
    if required:
        return report
    parts = datasets if datasets is not None else (set(spec.parts) if spec else None)
    rows = _rows(df, cls, parts, report.problems)
    flow_side, apex_side = _expected_sides(spec, record)
    for row in rows:
        _check_image(root, row.flow, row, False, flow_side, "flow", report.problems)
        if row.apex is not None:
            _check_image(root, row.apex, row, True, apex_side, "apex", report.problems)
        elif spec is not None:
            report.problems.append(("manifest", row.sample_id, f"line {row.line}: the 'apex' cell is empty"))
    report.counts = _compare_counts(rows, spec, cls.classes, report.problems)
    if sheet is not None:
        report.sheet = compare_sheet(rows, Path(sheet), cls, report.problems)
    return report


def _folder_scheme(root: Path) -> str | None:
    """The class scheme an export recorded in ``export.json`` (``merkit export-flow``), or ``None``."""
    import json

    path = root / "export.json"
    if not path.is_file():
        return None
    try:
        scheme = json.loads(path.read_text()).get("scheme")
    except (json.JSONDecodeError, AttributeError) as error:
        raise DataError(f"{path} is not a readable export record: {error}") from error
    return scheme if isinstance(scheme, str) else None

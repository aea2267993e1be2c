"""The one owner of merkit's output folders: their layout, their stamp, and the rules for writing into them.

Kinds of folder, each with its layout (the names below are the only place merkit spells them) and its stamp, a
small JSON file that names the kind:

==============  =====================  ================================================================================
kind            stamp                  what the stamp ties the folder to
==============  =====================  ================================================================================
``evaluate``    ``run.json``           the config's ``result_hash`` and the data's content fingerprint
                                       (:meth:`merkit.features.FeatureSet.fingerprint`), plus where the units trained
                                       and what data they saw (``data``: counts, datasets, the subset record)
``ensemble``    ``run.json``           the member runs (resolved paths), ``collapse_seeds`` and ``last_epochs``
``checkpoint``  ``checkpoint.json``    (the checkpoint's own record, with ``"kind": "checkpoint"``)
``export-flow`` ``export.json``        the preprocessing record's hash
``preprocess``  ``record.json``        the preprocessing record's hash (the folder is ``inputs-<hash>``)
==============  =====================  ================================================================================

Folders written before the stamp named its kind are recognised by their stamp's contents (a ``run.json`` with a
``result_hash`` is an evaluation; a ``checkpoint.json`` with ``model`` and ``merkit_version``, or a damaged one
beside nothing but the checkpoint's own files, a checkpoint; an
``export.json`` with a ``record_hash`` an export; a ``record.json`` in ``inputs-<hash>`` a cache; an unstamped
folder whose ``data_notes.json`` starts with ``ensemble:`` an ensemble).

The rules, the same for every kind:

* merkit writes only into an absent or empty folder, or a folder of its own kind and config; a run folder with no
  finished unit may be restamped by any config of its kind. Anything else is refused with one line that names
  the folder (:class:`merkit.errors.ConfigError`).
* It never deletes what it did not write: a checkpoint replaces only a folder stamped as a checkpoint, and
  clearing a folder (``--force``, a restamp, ``--overwrite``) removes only the files of merkit's own layout.
* It checks everything before it writes anything: the ``check_*`` methods only read, the ``claim``/``write``
  methods write the stamp first and then the rest.
* Every file is written atomically and flushed (:mod:`merkit.files`); a disk that refuses a write raises
  :class:`merkit.errors.OutputError` naming the path.

This module imports only :mod:`merkit.errors`, :mod:`merkit.files` and the standard library.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Literal, get_args

from merkit.errors import ConfigError, DataError, OutputError
from merkit.files import is_temporary, make_dirs, output_error, sync_dir, sync_file, write_atomic, write_json

KINDS: tuple[str, ...] = ("evaluate", "ensemble", "checkpoint", "export-flow", "preprocess")
RUN_KINDS: tuple[str, ...] = ("evaluate", "ensemble")
FINGERPRINT_VERSION = 2  # 1: ids, labels, shapes and classes; 2: the same and the tensors' bytes
PROVENANCE_KEYS: tuple[str, ...] = ("devices", "environments", "nodes")
#: The formats a run's figures are written in (``--figure-format``); PNG at :data:`PNG_DPI` dots per inch.
FigureFormat = Literal["png", "pdf", "svg"]
FIGURE_FORMATS: tuple[str, ...] = get_args(FigureFormat)
PNG_DPI = 300
Writer = Callable[[Path], None]


def _read_json(path: Path):
    """The JSON value in ``path``, or ``None`` when it does not parse."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def read_run_stamp(path: Path) -> dict:
    """``run.json`` of a run folder.

    Raises:
        ConfigError: it does not parse or is not a JSON object (the message names it and says what to do).
    """
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is damaged ({error}); it ties the folder to one config and dataset, so the "
                          "folder cannot be resumed: delete the folder (or choose another --out) and run "
                          "again") from error
    if not isinstance(record, dict):
        raise ConfigError(f"{path} is damaged (not a JSON object); delete the folder and run again")
    return record


def folder_kind(path: str | Path) -> str | None:
    """The kind of merkit folder ``path`` is (one of :data:`KINDS`), read from its stamp; ``None`` for a folder
    merkit did not write (or an absent one).

    Raises:
        ConfigError: its ``run.json`` is damaged.
    """
    path = Path(path)
    if not path.is_dir():
        return None
    if (path / RunFolder.STAMP).is_file():
        stamp = read_run_stamp(path / RunFolder.STAMP)
        kind = stamp.get("kind", "evaluate" if "result_hash" in stamp else None)
        return kind if kind in RUN_KINDS else None
    meta = _read_json(path / CheckpointFolder.META) if (path / CheckpointFolder.META).is_file() else None
    if isinstance(meta, dict) and (meta.get("kind") == "checkpoint" or {"model", "merkit_version"} <= set(meta)):
        return "checkpoint"
    if meta is None and (path / CheckpointFolder.META).is_file() and {
            e.name for e in path.iterdir() if not is_temporary(e.name)} <= {*CheckpointFolder.FILES,
                                                                             CheckpointFolder.CARD}:
        return "checkpoint"  # a damaged checkpoint.json among the checkpoint's own files only: retraining repairs it
    export = _read_json(path / ExportFolder.STAMP) if (path / ExportFolder.STAMP).is_file() else None
    if isinstance(export, dict) and (export.get("kind") == "export-flow" or "record_hash" in export):
        return "export-flow"
    record = _read_json(path / CacheFolder.STAMP) if (path / CacheFolder.STAMP).is_file() else None
    if isinstance(record, dict) and (record.get("kind") == "preprocess" or path.name.startswith("inputs-")):
        return "preprocess"
    notes = _read_json(path / RunFolder.DATA_NOTES) if (path / RunFolder.DATA_NOTES).is_file() else None
    if (isinstance(notes, dict) and str((notes.get("notes") or [""])[0]).startswith("ensemble:")
            and (path / RunFolder.PREDICTIONS).is_file()):
        return "ensemble"  # written before ensembles had a stamp
    return None


def check_target(path: str | Path, kind: str) -> bool:
    """Whether merkit may write a ``kind`` folder at ``path``: ``False`` when it is absent or empty (a new folder),
    ``True`` when it already is a ``kind`` folder. Reads only.

    Raises:
        ConfigError: ``path`` is a file, or a folder that holds anything else (files merkit did not write, or
            another kind of merkit folder); the message names the folder.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file, not a folder: choose a folder (absent or empty) for the {kind} output")
    if not path.exists():
        return False
    try:
        entries = sorted(e.name for e in path.iterdir() if not is_temporary(e.name))
    except OSError as error:
        raise ConfigError(f"{path} cannot be read ({error.strerror or error}): choose another output folder") \
            from error
    if not entries:
        return False
    found = folder_kind(path)
    if found is None:
        listed = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise ConfigError(f"{path} holds files merkit did not write ({listed}); merkit writes a {kind} output only "
                          "into an empty folder or one of its own: choose another output folder")
    if found != kind:
        raise ConfigError(f"{path} is a merkit {found} folder, not a {kind} folder; merkit does not write one kind "
                          "over another: choose another output folder")
    return True


def _remove(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise output_error(path, error) from error


# ---------------------------------------------------------------------------------------------------- run folders

@dataclass
class Opening:
    """What :meth:`RunFolder.check_run` decided, for :meth:`RunFolder.claim`.

    Attributes:
        action: ``new`` (absent or empty folder), ``resume`` (same kind, config and data), ``restamp`` (a run
            folder with no finished unit, taken over by another config or data), ``upgrade`` (same config, a stamp
            of fingerprint version 1 whose ids, labels and shapes match: resumed, its content unverifiable), or
            ``replace`` (``force``: merkit's own unit files and outputs are removed and recomputed).
        stamp: the stamp to write.
        note: what a counted warning must say (``upgrade`` and ``replace``), else ``None``.
    """

    action: str
    stamp: dict
    note: str | None = None


class _Folder:
    """A folder of merkit's at ``path``; each subclass names its kind's files."""

    path: Path

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        """``<folder>/<name>`` for one of the layout's names (``RunFolder.METRICS``, ...)."""
        return self.path / name


class RunFolder(_Folder):
    """The layout of an evaluation or ensemble run folder (``merkit evaluate``, ``merkit ensemble``)::

        RUN/run.json            the stamp (kind, result_hash, data fingerprint; the data's counts and subset;
                                devices, machines, Ray nodes)
        RUN/config.yaml         the config (an ensemble's: the first member's, renamed)
        RUN/units/seed<S>/<fold>.csv              one unit's predictions, written last
        RUN/checkpoints/seed<S>/<fold>.safetensors   its weights (protocol.save_checkpoints)
        RUN/epochs/seed<S>/<fold>.csv             its learning curve (protocol.record_epochs)
        RUN/choices/seed<S>/<fold>.json           its inner-selection choice (protocol.selection: inner)
        RUN/losses/seed<S>/<fold>.csv             its mean training loss per epoch (every unit)
        RUN/predictions.csv, metrics.json, per_class.csv, report.md, data_notes.json, preprocessing.json,
            epoch_curve.csv, training_loss.csv, megc2019_log_seed<S>.txt
        RUN/confusion.<F>, confusion_normalised.<F>, confusion_<dataset>.<F>, confusion_<dataset>_normalised.<F>,
            epoch_curve.<F>                       the figures, <F> one of FIGURE_FORMATS (:meth:`figure`)
        RUN/tables.tex, tables.csv   the report's table for a paper (``merkit report --latex`` / ``--csv``); once
                                written, every later report rewrites them, so that they never lag metrics.json
    """

    STAMP: ClassVar[str] = "run.json"
    CONFIG: ClassVar[str] = "config.yaml"
    PREDICTIONS: ClassVar[str] = "predictions.csv"
    METRICS: ClassVar[str] = "metrics.json"
    PER_CLASS: ClassVar[str] = "per_class.csv"
    REPORT: ClassVar[str] = "report.md"
    DATA_NOTES: ClassVar[str] = "data_notes.json"
    PREPROCESSING: ClassVar[str] = "preprocessing.json"
    EPOCH_CURVE: ClassVar[str] = "epoch_curve.csv"
    TRAINING_LOSS: ClassVar[str] = "training_loss.csv"
    CONFUSION: ClassVar[str] = "confusion"  # a figure's stem (:meth:`confusion`)
    EPOCH_CURVE_FIGURE: ClassVar[str] = "epoch_curve"  # a figure's stem (:meth:`figure`)
    TABLES_TEX: ClassVar[str] = "tables.tex"
    TABLES_CSV: ClassVar[str] = "tables.csv"
    UNITS: ClassVar[str] = "units"
    CHECKPOINTS: ClassVar[str] = "checkpoints"
    EPOCHS: ClassVar[str] = "epochs"
    CHOICES: ClassVar[str] = "choices"
    LOSSES: ClassVar[str] = "losses"
    UNIT_PARTS: ClassVar[dict[str, str]] = {UNITS: ".csv", CHECKPOINTS: ".safetensors", EPOCHS: ".csv",
                                            CHOICES: ".json", LOSSES: ".csv"}
    _MEGC_LOG: ClassVar[re.Pattern] = re.compile(r"^megc2019_log_seed-?\d+\.txt$")
    _FIGURE: ClassVar[re.Pattern] = re.compile(r"^(confusion(_.+)?|epoch_curve)\.(png|pdf|svg)$")

    def figure(self, stem: str, figure_format: str = "png") -> Path:
        """A figure of the run, ``<stem>.<figure_format>`` (``figure_format`` one of :data:`FIGURE_FORMATS`).

        Raises:
            ConfigError: another format (callers validate it at the boundary first).
        """
        if figure_format not in FIGURE_FORMATS:
            raise ConfigError(f"figure format {figure_format!r} is not one of {FIGURE_FORMATS}")
        return self.path / f"{stem}.{figure_format}"

    def confusion(self, part: str = "full", normalised: bool = False, figure_format: str = "png") -> Path:
        """A confusion-matrix figure: ``confusion`` for the full set, ``confusion_<dataset>`` for one part (the
        dataset id, or for an id with other characters than letters, digits, ``.``, ``_`` and ``-`` a
        file-name-safe form of it with 6 hex digits of the id), ``_normalised`` appended for the row-normalised
        variant; ``.<figure_format>``."""
        stem = self.CONFUSION
        if part != "full":
            safe = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", part) is not None
            digest = hashlib.sha256(part.encode()).hexdigest()[:6]
            stem += "_" + (part if safe else f"{re.sub(r'[^A-Za-z0-9._-]', '_', part)}-{digest}")
        return self.figure(stem + ("_normalised" if normalised else ""), figure_format)

    def megc_log(self, seed: int) -> Path:
        """The MEGC2019 log of one seed."""
        return self.path / f"megc2019_log_seed{seed}.txt"

    def unit_file(self, part: str, seed: int, slug: str) -> Path:
        """A unit's file: ``part`` one of :attr:`UNIT_PARTS` (``units`` holds its predictions)."""
        return self.path / part / f"seed{seed}" / f"{slug}{self.UNIT_PARTS[part]}"

    def unit_files(self, part: str) -> list[Path]:
        """Every file of one unit ``part`` in the folder (every seed), sorted; temporary files excluded."""
        base = self.path / part
        if not base.is_dir():
            return []
        suffix = self.UNIT_PARTS[part]
        return sorted(p for p in base.glob(f"seed*/*{suffix}")
                      if re.fullmatch(r"seed-?\d+", p.parent.name) and not is_temporary(p.name) and p.is_file())

    def finished_units(self) -> list[Path]:
        """The units' prediction files: each is a finished unit."""
        return self.unit_files(self.UNITS)

    def read_stamp(self) -> dict | None:
        """``run.json``, or ``None`` when there is none.

        Raises:
            ConfigError: it is damaged.
        """
        path = self.file(self.STAMP)
        return read_run_stamp(path) if path.is_file() else None

    def provenance(self, key: str = "devices") -> list[str]:
        """What trained the units (``devices``, ``environments`` or ``nodes``), from ``run.json``; empty for folders
        written before merkit recorded them."""
        stamp = self.read_stamp() or {}
        return list(stamp.get(key, []))

    def check_run(self, kind: str, identity: dict, fingerprint: str | None = None,
                  old_fingerprint: str | None = None, force: bool = False, about: dict | None = None) -> Opening:
        """Decide whether a ``kind`` run with ``identity`` (e.g. ``{"result_hash": ...}``) on data of
        ``fingerprint`` may write here, and how (:class:`Opening`). Reads only.

        Args:
            about: more for the stamp that does not decide whether the folder may be written (``{"data": ...}``,
                what data the run saw; the fingerprint decides that).
            old_fingerprint: the same data's fingerprint by the version-1 formula (ids, labels, shapes), to
                recognise a folder stamped before content fingerprints.
            force: replace the folder's units (merkit's own files) when the config or the data differ.

        Raises:
            ConfigError: see :func:`check_target`; the folder holds finished units of another config, or of other
                data (the data changed), and ``force`` is not given; ``run.json`` is damaged.
        """
        stamp = {"kind": kind, **identity}
        if fingerprint is not None:
            stamp.update(data_fingerprint=fingerprint, fingerprint_version=FINGERPRINT_VERSION)
        stamp.update(about or {})
        if not check_target(self.path, kind):
            return Opening("new", stamp)
        old = self.read_stamp() or {}
        same_config = all(old.get(k) == v for k, v in identity.items())
        if fingerprint is None:
            same_data: bool | None = True
        elif old.get("fingerprint_version", 1) >= FINGERPRINT_VERSION:
            same_data = old.get("data_fingerprint") == fingerprint
        else:  # stamped before content fingerprints: only ids, labels and shapes can be compared
            same_data = None if old.get("data_fingerprint") == old_fingerprint else False
        kept = {**old, **stamp}
        if same_config and same_data:
            return Opening("resume", kept)
        units = self.finished_units() or ([self.file(self.PREDICTIONS)] if kind == "ensemble"
                                          and self.file(self.PREDICTIONS).is_file() else [])
        if not units:
            return Opening("restamp", stamp)
        if same_config and same_data is None:
            return Opening("upgrade", kept, f"{self.path} was stamped before merkit fingerprinted the data's content; "
                           "its sample ids, labels and input shapes match, so its units are reused, but a change "
                           "of the inputs' values since cannot be seen: pass --force to recompute them")
        if force:
            what = "another config" if not same_config else "other data"
            return Opening("replace", stamp, f"{self.path}: {len(units)} finished unit(s) of {what} "
                           "removed and recomputed (--force)")
        if not same_config:
            old_id = {k: old.get(k) for k in identity}
            raise ConfigError(f"{self.path} holds results of another config ({old_id}, now {identity}); choose "
                              "another --out, or pass --force to replace its units")
        raise ConfigError(f"{self.path} holds results computed from other data: the data changed since they were "
                          f"made (fingerprint {old.get('data_fingerprint')}, now {fingerprint}); pass --force to "
                          "recompute them, or choose another --out")

    def claim(self, opening: Opening, files: dict[str, Writer] | None = None) -> None:
        """Act on :meth:`check_run`'s decision: clear merkit's own unit files and outputs (``restamp``,
        ``replace``), write the stamp, then ``files`` (name -> writer of the temporary path), each atomically.

        Raises:
            OutputError: the disk refused a write.
        """
        if opening.action in ("restamp", "replace"):
            self._clear_own()
        make_dirs(self.path)
        if opening.action != "resume" or self.read_stamp() != opening.stamp:
            write_json(self.file(self.STAMP), opening.stamp)
        for name, write in (files or {}).items():
            write_atomic(self.file(name), write)

    def _clear_own(self) -> None:
        """Remove the files of merkit's run layout (units and outputs); anything else stays."""
        own = [p for part in self.UNIT_PARTS for p in self.unit_files(part)]
        outputs = (self.PREDICTIONS, self.METRICS, self.PER_CLASS, self.REPORT, self.DATA_NOTES,
                   self.PREPROCESSING, self.EPOCH_CURVE, self.TRAINING_LOSS, self.TABLES_TEX, self.TABLES_CSV)
        own += [self.file(n) for n in outputs]
        own += [p for p in self.path.iterdir() if self._MEGC_LOG.match(p.name) or self._FIGURE.match(p.name)]
        _remove(own)

    def data_record(self) -> dict:
        """What data the run saw, from ``run.json`` (``{"samples", "subjects", "datasets", "subset"}``); empty for
        folders written before merkit recorded it.

        Raises:
            ConfigError: ``run.json`` is damaged.
        """
        record = (self.read_stamp() or {}).get("data")
        return dict(record) if isinstance(record, dict) else {}

    def add_provenance(self, **values: str | None) -> None:
        """Add where a unit trained (``devices``, ``environments``, ``nodes``) to ``run.json``, each value once.

        Raises:
            ConfigError: ``run.json`` is damaged. OutputError: it cannot be written.
        """
        record = self.read_stamp() or {}
        changed = False
        for key, value in values.items():
            if value and value not in record.get(key, []):
                record[key] = [*record.get(key, []), value]
                changed = True
        if changed:
            write_json(self.file(self.STAMP), record)

    def require(self) -> str:
        """Check that the folder is a merkit run folder (evaluate or ensemble) and return its kind.

        Raises:
            ConfigError: it is not one; its ``run.json`` is damaged.
        """
        kind = folder_kind(self.path)
        if kind not in RUN_KINDS:
            what = "does not exist" if not self.path.exists() else (
                "is a file" if not self.path.is_dir() else "is not a merkit run folder" + (
                    f" (it is a merkit {kind} folder)" if kind else " (it has no run.json)"))
            raise ConfigError(f"{self.path} {what}: name a folder written by merkit evaluate or merkit ensemble")
        return kind


# ---------------------------------------------------------------------------------------------------- checkpoints

class CheckpointFolder(_Folder):
    """The layout of a checkpoint folder (``merkit train``)::

        CKPT/model.safetensors   the weights
        CKPT/config.yaml         the run config that trained them
        CKPT/checkpoint.json     the stamp: the checkpoint's record with ``"kind": "checkpoint"``
        CKPT/MODEL_CARD.md       optional (the packaged models)
    """

    WEIGHTS: ClassVar[str] = "model.safetensors"
    CONFIG: ClassVar[str] = "config.yaml"
    META: ClassVar[str] = "checkpoint.json"
    CARD: ClassVar[str] = "MODEL_CARD.md"
    FILES: ClassVar[tuple[str, ...]] = ("checkpoint.json", "model.safetensors", "config.yaml")

    def check(self) -> None:
        """Refuse a destination that is a file or a folder other than a merkit checkpoint (an empty or absent one
        is fine). Reads only.

        A checkpoint is replaced whole, so a checkpoint folder that also holds other files (a note, a model card
        someone added) is refused too: replacing it would delete them.

        Raises:
            ConfigError: naming the folder (and the files merkit did not write).
        """
        if not check_target(self.path, "checkpoint"):
            return
        others = sorted(e.name for e in self.path.iterdir() if not is_temporary(e.name) and e.name not in self.FILES)
        if others:
            raise ConfigError(f"{self.path} is a merkit checkpoint that also holds files merkit did not write "
                              f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); replacing it would "
                              "delete them: move them away, or choose another --out")

    def write(self, meta: dict, weights: Writer, config: Writer) -> Path:
        """Write the checkpoint whole into a temporary folder beside ``path``, flush it, then swap it into place;
        the replaced checkpoint (merkit's own, :meth:`check`) is removed last. A kill leaves the old checkpoint or
        the new one.

        Args:
            meta: the record for ``checkpoint.json`` (``"kind": "checkpoint"`` is added).
            weights, config: writers of ``model.safetensors`` and ``config.yaml`` (given the path to write).

        Raises:
            ConfigError: see :meth:`check`. OutputError: the disk refused a write.
        """
        self.check()
        parent = make_dirs(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        old = self.path.with_name(f".{self.path.name}.{os.getpid()}.old")
        try:
            shutil.rmtree(tmp, ignore_errors=True)  # a leftover of this process id: merkit's own temporary name
            tmp.mkdir()
            weights(tmp / self.WEIGHTS)
            config(tmp / self.CONFIG)
            write_json(tmp / self.META, {"kind": "checkpoint", **meta})
            for name in (self.WEIGHTS, self.CONFIG):
                sync_file(tmp / name)
            sync_dir(tmp)
            if self.path.exists():
                os.replace(self.path, old)
            os.replace(tmp, self.path)
            sync_dir(parent)
            shutil.rmtree(old, ignore_errors=True)
        except OSError as error:
            raise OutputError(f"cannot write the checkpoint {self.path}: {error.strerror or error}") from error
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.path


# ---------------------------------------------------------------------------------------------------- exports

class ExportFolder(_Folder):
    """The layout of a composite-format export (``merkit export-flow``)::

        OUT/export.json          the stamp: kind, the preprocessing record and its hash, then the counts
        OUT/manifest.csv         dataset, subject, sample, label, emotion, flow, apex
        OUT/provenance.csv       per sample: onset and apex frames, apex source
        OUT/sources.csv          per sample: the frame numbers read and a hash of their bytes (re-export checks it)
        OUT/flow/<stem>.png      28x28 RGB u, v, strain
        OUT/apex/<stem>.jpg      the grey apex crop
    """

    STAMP: ClassVar[str] = "export.json"
    MANIFEST: ClassVar[str] = "manifest.csv"
    PROVENANCE: ClassVar[str] = "provenance.csv"
    SOURCES: ClassVar[str] = "sources.csv"
    FLOW: ClassVar[str] = "flow"
    APEX: ClassVar[str] = "apex"

    def flow(self, stem: str) -> Path:
        return self.path / self.FLOW / f"{stem}.png"

    def apex(self, stem: str) -> Path:
        return self.path / self.APEX / f"{stem}.jpg"

    def check(self, record_hash: str, overwrite: bool = False) -> str:
        """``new``, ``resume`` (an export of the same record) or ``replace`` (another record, ``overwrite``). Reads
        only.

        Raises:
            ConfigError: see :func:`check_target`. DataError: an export of another record, without ``overwrite``.
        """
        if not check_target(self.path, "export-flow"):
            return "new"
        old = _read_json(self.file(self.STAMP)) or {}
        if old.get("record_hash") == record_hash:
            return "resume"
        if not overwrite:
            raise DataError(f"{self.path} holds an export made with other preprocessing (hash "
                            f"{old.get('record_hash')}, now {record_hash})",
                            hint="choose another output folder or pass overwrite=True (--overwrite)")
        return "replace"

    def claim(self, action: str, stamp: dict) -> None:
        """Act on :meth:`check`: for ``replace``, remove the old export's own files (the images its manifest lists, the
        manifest, provenance, sources and stamp); for ``new`` and ``replace``, write the stamp; then make ``flow/``
        and ``apex/``.

        Raises:
            OutputError: the disk refused a write.
        """
        if action == "replace":
            _remove(self._listed_images() + [self.file(n) for n in (self.MANIFEST, self.PROVENANCE, self.SOURCES,
                                                                    self.STAMP)])
        if action in ("new", "replace"):
            make_dirs(self.path)
            write_json(self.file(self.STAMP), {"kind": "export-flow", **stamp})
        make_dirs(self.path / self.FLOW)
        make_dirs(self.path / self.APEX)

    def finish(self, stamp: dict) -> None:
        """Rewrite the stamp with the finished export's counts."""
        write_json(self.file(self.STAMP), {"kind": "export-flow", **stamp})

    def _listed_images(self) -> list[Path]:
        path = self.file(self.MANIFEST)
        if not path.is_file():
            return []
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        listed = []
        for row in rows:
            for column, folder in (("flow", self.FLOW), ("apex", self.APEX)):
                name = row.get(column) or ""
                target = self.path / name
                if name.startswith(f"{folder}/") and target.parent == self.path / folder:
                    listed.append(target)
        return listed


# ---------------------------------------------------------------------------------------------------- inputs cache

class CacheFolder:
    """The layout of the inputs cache of one preprocessing record under a cache root::

        CACHE/inputs-<record hash>/record.json                        the stamp: kind, record hash, the record
        CACHE/inputs-<record hash>/<dataset>/<subject>/<sample>/inputs.npz   model-input key -> array
        CACHE/inputs-<record hash>/<dataset>/<subject>/<sample>/meta.json    written last
    """

    root: Path
    record_hash: str
    STAMP: ClassVar[str] = "record.json"
    INPUTS: ClassVar[str] = "inputs.npz"
    META: ClassVar[str] = "meta.json"

    def __init__(self, root: str | Path, record_hash: str):
        self.root = Path(root)
        self.record_hash = record_hash
        self._claimed = []

    @property
    def dir(self) -> Path:
        return self.root / f"inputs-{self.record_hash}"

    def clip(self, sample_id: str) -> Path:
        """One clip's folder."""
        return self.dir / sample_id

    def check(self) -> None:
        """Refuse an ``inputs-<hash>`` folder that is not merkit's cache. Reads only.

        Raises:
            ConfigError: naming the folder.
        """
        check_target(self.dir, "preprocess")

    def claim(self, record: dict) -> None:
        """Check the folder and stamp it with ``record`` unless it is stamped; once per instance.

        Raises:
            ConfigError: see :meth:`check`. OutputError: the disk refused a write.
        """
        if self._claimed:
            return
        self.check()
        if not (self.dir / self.STAMP).is_file():
            write_json(self.dir / self.STAMP, {"kind": "preprocess", "record_hash": self.record_hash,
                                               "preprocessing": record})
        self._claimed.append(True)

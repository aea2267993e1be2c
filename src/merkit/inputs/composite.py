"""The MEGC2019 composite's format, read and written in one place.

The composite's inputs (STSTNet, FG 2019; reused by HTNet) are a folder with ``manifest.csv`` (columns ``dataset,
subject, sample, label, emotion, flow[, apex]``, paths relative to the folder), 28x28 RGB flow PNGs and 224x224 grey
apex crops. **Channel order in the files:** R = horizontal flow u (positive to the right), G = vertical flow v
(positive downwards), B = optical strain, each min-max stretched to 0..255 per image. ``cv2.imread`` returns BGR,
i.e. (strain, v, u); :func:`read_composite` converts to the file's RGB order before selecting channels.

:func:`write_composite` writes that format from a raw sample table, through :func:`merkit.inputs.clip.clip_inputs`
with a preprocessing record, so a user holding the raw releases can rebuild the benchmark's kind of inputs, or build
them for another dataset. Besides the composite's files the folder gets ``export.json`` (the record, its hash and
the counts), ``provenance.csv`` (per sample the onset and apex frame numbers used and where the apex came from) and
``sources.csv`` (per sample the frames read and a hash of their bytes). A rerun with the same record reuses the
images already written of samples whose frames are unchanged; another record refuses to mix with them. The folder's
layout and rules are :class:`merkit.runfolder.ExportFolder`'s. :func:`read_composite` takes the folder's own record
from ``export.json`` when it has one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import pandas as pd
import torch

from merkit.errors import ConfigError, DataError, Diagnostics, Where
from merkit.features import FeatureSet
from merkit.files import write_atomic
from merkit.inputs.record import ON_ERROR, Preprocessing
from merkit.media import read_8bit_image, write_image
from merkit.runfolder import ExportFolder

FLOW_FILE_CHANNELS: tuple[str, ...] = ("u", "v", "strain")
MANIFEST_COLUMNS: tuple[str, ...] = ("dataset", "subject", "sample", "label", "emotion", "flow", "apex")
#: Seconds between the records of the samples an export has written so far (see :func:`write_composite`).
CHECKPOINT_S: float = 30.0
#: ``provenance.csv``: where each exported sample's onset and apex came from.
PROVENANCE_COLUMNS: tuple[str, ...] = ("sample_id", "onset_frame", "apex_frame", "apex_source")
#: ``sources.csv``: the frames each exported sample read and a hash of their bytes (:func:`source_hash`).
SOURCE_COLUMNS: tuple[str, ...] = ("sample_id", "frames", "source_hash")
REQUIRED_COLUMNS: tuple[str, ...] = MANIFEST_COLUMNS[:-1]


# ---------------------------------------------------------------------------------------------------- reading

def manifest_line(position: int) -> int:
    """The line of ``manifest.csv`` that holds data row ``position`` (0-based; line 1 is the header)."""
    return position + 2


def read_manifest(root: str | Path) -> pd.DataFrame:
    """Read and check ``root/manifest.csv``: its columns, at least one row, no empty required cell, integer labels.

    Returns:
        The rows as written (ids as strings, not yet normalised), ``label`` as int64.

    Raises:
        DataError: the folder or manifest is missing, empty (zero bytes or a header alone) or not CSV, required
            columns are absent, a required cell is empty, or a label is not an integer. The message names the file,
            and the line and sample where there is one.
    """
    root = Path(root)
    path = root / "manifest.csv"
    hint = "a flow folder needs manifest.csv with columns " + ", ".join(REQUIRED_COLUMNS)
    if not path.is_file():
        raise DataError(f"no manifest.csv in {root}", hint=hint)
    try:
        df = pd.read_csv(path, dtype={"subject": str, "sample": str})
    except pd.errors.EmptyDataError as error:
        raise DataError(f"{path} is empty", hint=hint) from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not a readable CSV file: {str(error).splitlines()[0]}", hint=hint) from error
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path} lacks columns {missing}", hint=hint)
    if df.empty:
        raise DataError(f"{path} has a header but no samples", hint="list one sample per line below the header")
    for position, values in enumerate(df[list(REQUIRED_COLUMNS)].itertuples(index=False)):
        where = Where(*(None if pd.isna(v) else str(v).strip() for v in values[:3]))
        empty = [c for c, v in zip(REQUIRED_COLUMNS, values) if pd.isna(v) or not str(v).strip()]
        if empty:
            raise DataError(f"{path} line {manifest_line(position)}: the {empty[0]!r} cell is empty", where,
                            hint="every sample needs " + ", ".join(REQUIRED_COLUMNS))
        label = pd.to_numeric(pd.Series([values[3]]), errors="coerce").iloc[0]
        if pd.isna(label) or not np.isfinite(label) or label != int(label):
            raise DataError(f"{path} line {manifest_line(position)}: label {values[3]!r} is not a class index",
                            where, hint="labels are integers 0..classes-1")
    df["label"] = pd.to_numeric(df["label"]).astype("int64")
    return df


def folder_record(root: str | Path) -> Preprocessing | None:
    """The preprocessing record an exported folder was written with (``export.json``), or ``None``.

    Raises:
        DataError: ``export.json`` exists but holds no readable record.
    """
    path = Path(root) / "export.json"
    if not path.is_file():
        return None
    from merkit.errors import CheckpointError

    try:
        return Preprocessing.from_dict(json.loads(path.read_text())["preprocessing"], str(path))
    except (json.JSONDecodeError, KeyError, CheckpointError) as error:
        raise DataError(f"{path} holds no readable preprocessing record: {error}",
                        hint="re-export the folder with merkit export-flow") from error


def _read_flow(path: Path, where: Where, side: tuple[int, int] | None, expected: str) -> np.ndarray:
    """One flow image, (H, W, 3) RGB uint8 (:func:`merkit.media.read_8bit_image`), ``side`` (H, W) pixels if given.

    Raises:
        DataError: missing, undecodable or not 8-bit (named with its bit depth), not 3 channels, or another size
            than ``side`` (the message names the file, its size and the expected one, and says ``expected``).
    """
    img = read_8bit_image(path, where)
    if img.ndim != 3 or img.shape[2] != 3:
        channels = 1 if img.ndim == 2 else img.shape[2]
        raise DataError(f"flow image {path} has {channels} channels, expected 3 (u, v, strain)", where)
    if side is not None and img.shape[:2] != side:
        raise DataError(f"flow image {path} is {img.shape[0]}x{img.shape[1]} px, expected {side[0]}x{side[1]} "
                        f"({expected})", where, hint="every flow image of a folder has the size its record's "
                        "data.motion.size gives; re-export the folder, or set data.motion.size to the images' size")
    return img


def label_problem(label: object, emotion: object, cls) -> tuple[str, str | None] | None:
    """What is wrong with a manifest row's ``label`` and ``emotion`` under the class scheme ``cls``: ``(message,
    hint)``, or ``None`` when they agree. An emotion the scheme does not know gets a did-you-mean hint."""
    import difflib

    known = sorted(set(cls.classes) | set(cls.mapping) | set(cls.drop))
    key = str(emotion).strip().lower()
    if key not in known:
        close = difflib.get_close_matches(key, known, n=1)
        return (f"emotion {emotion!r} is not in class scheme {cls.name!r} {list(cls.classes)}",
                f"did you mean {close[0]!r}?" if close else f"the scheme knows {known}")
    expected = cls.label_of(emotion)
    if expected is None or not 0 <= int(label) < cls.num_classes:
        return f"label {label} / emotion {emotion!r} is not a class of {cls.name}", None
    if int(label) != expected:
        return f"label {label} disagrees with emotion {emotion!r} ({cls.name} gives {expected})", None
    return None


def _check_labels(table: pd.DataFrame, cls, manifest: Path) -> None:
    """Raise :class:`DataError` (naming the manifest line and the sample) for a label or emotion that the class
    scheme ``cls`` does not give (:func:`label_problem`)."""
    for position, row in enumerate(table.itertuples(index=False)):
        problem = label_problem(row.label, row.emotion, cls)
        if problem is not None:
            raise DataError(f"{manifest} line {manifest_line(position)}: {problem[0]}",
                            Where(row.dataset, row.subject, row.sample), hint=problem[1])


def _read_apex(path: Path, where: Where, side: tuple[int, int] | None) -> np.ndarray:
    """One stored apex crop, grey (H, W) uint8, ``side`` (H, W) pixels if given (the first crop's size, when the
    crops are stacked as stored).

    Raises:
        DataError: missing, undecodable or not 8-bit, or another size than ``side``; the message names the file.
    """
    grey = read_8bit_image(path, where, grey=True)
    if side is not None and grey.shape != tuple(side):
        raise DataError(f"apex image {path} is {grey.shape[0]}x{grey.shape[1]} px, the first apex crop is "
                        f"{side[0]}x{side[1]}", where, hint="give data.apex_size to resize every crop to one size")
    return grey


def _the_record(root: Path, record: Preprocessing | None) -> Preprocessing:
    """The preprocessing record of a flow folder: its own (``export.json``), else ``record``, else the default.

    Raises:
        DataError: the folder's own record differs from ``record``.
    """
    own = folder_record(root)
    if record is not None and record.action_units:  # the AU vector comes from the sheets, not the images
        record = dataclasses.replace(record, action_units=())
    if own is not None and record is not None and own != record:
        raise DataError(f"{root} was exported with preprocessing {own.config_hash()} ({own.describe()}), the config "
                        f"says {record.config_hash()} ({record.describe()})",
                        hint="give the config the export's data.face / data.motion, or re-export with this config")
    return own or record or Preprocessing()


def _source_notes(root: Path) -> list[str]:
    """A note naming the synthetic data an export was made from (its ``export.json`` ``source.generator``: seed,
    counts, faces), so that a checkpoint trained on it names its data seed; none for other folders."""
    stamp = root / ExportFolder.STAMP
    generator = (json.loads(stamp.read_text()).get("source") or {}).get("generator") if stamp.is_file() else None
    if not isinstance(generator, dict):
        return []
    return [f"made by {generator.get('generator')} version {generator.get('version')}: seed {generator.get('seed')}, "
            f"{generator.get('subjects')} subjects x {generator.get('clips_per_class')} clips per class, "
            f"faces {', '.join(map(str, generator.get('faces', [])))}"]


def _apex_row(path: Path, where: Where, stored: tuple[int, int] | None, apex_size: int | None, with_au_boxes: bool,
              with_face_points: bool, diagnostics: Diagnostics):
    """One sample's apex crop, grey (S, S) uint8 resized to ``apex_size`` when given, and the AU boxes and face
    points of the landmarks fitted on the stored crop (``None`` where not asked for)."""
    grey = _read_apex(path, where, stored)
    box = point = None
    if with_au_boxes or with_face_points:
        from merkit.face.regions import au_boxes, crop_landmarks, face_points

        landmarks = crop_landmarks(grey, where, diagnostics)
        box = au_boxes(landmarks, grey.shape[0]) if with_au_boxes else None
        point = face_points(landmarks, grey.shape[0]) if with_face_points else None
    if apex_size:
        grey = cv2.resize(grey, (apex_size, apex_size), interpolation=cv2.INTER_AREA)
    return grey, box, point


def _read_images(root: Path, table: pd.DataFrame, order: list[int], record: Preprocessing, with_apex: bool,
                 apex_size: int | None, with_au_boxes: bool, with_face_points: bool,
                 diagnostics: Diagnostics) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The model inputs of a flow folder's rows (``flow`` with its planes in ``order``, and the apex inputs asked
    for), and the notes on the landmarks fitted on the apex crops; see :func:`read_composite`."""
    missed_before = diagnostics.summary().get("face-not-detected", 0)
    flows, apexes, boxes, points = [], [], [], []
    with_landmarks = with_au_boxes or with_face_points
    side, expected = None, ""
    if record.motion.size is not None:
        side, expected = (record.motion.size,) * 2, "the record's data.motion.size"
    for row in table.itertuples(index=False):
        where = Where(row.dataset, row.subject, row.sample)
        img = _read_flow(root / row.flow, where, side, expected)
        if side is None:
            side, expected = img.shape[:2], f"the size of {root / row.flow}, the first flow image"
        flows.append(img[:, :, order])
        if with_apex or with_landmarks:
            if "apex_path" not in table.columns or pd.isna(row.apex_path):
                raise DataError("with_apex, with_au_boxes and with_face_points need an 'apex' column in the "
                                "manifest", where)
            stored = apexes[0].shape[1:] if apexes and not apex_size else None
            grey, box, point = _apex_row(root / row.apex_path, where, stored, apex_size, with_au_boxes,
                                         with_face_points, diagnostics)
            apexes.append(grey[None])
            boxes += [box] if with_au_boxes else []
            points += [point] if with_face_points else []
    flow = torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    inputs = {"flow": flow}
    notes = []
    if with_apex:
        inputs["apex"] = torch.from_numpy(np.stack(apexes)).float().div_(255.0)
    if with_au_boxes:
        inputs["au_boxes"] = torch.from_numpy(np.stack(boxes))
    if with_face_points:
        inputs["face_points"] = torch.from_numpy(np.stack(points))
    if with_landmarks:
        missed = diagnostics.summary().get("face-not-detected", 0) - missed_before
        what = " and ".join(n for n, on in (("AU regions", with_au_boxes), ("face points", with_face_points)) if on)
        notes.append(f"{what} from dlib landmarks fitted on each apex crop (in {missed} of {len(table)} crops "
                     "the detector found no face and the whole crop was the face box)")
    return inputs, notes


def read_composite(
    root: str | Path,
    scheme: str = "megc2019-3class",
    channels: Sequence[str] = FLOW_FILE_CHANNELS,
    file_channels: Sequence[str] = FLOW_FILE_CHANNELS,
    with_apex: bool = False,
    apex_size: int | None = None,
    with_au_boxes: bool = False,
    diagnostics: Diagnostics | None = None,
    record: Preprocessing | None = None,
    with_face_points: bool = False,
) -> FeatureSet:
    """Load a composite-format folder as a :class:`~merkit.features.FeatureSet`.

    Args:
        root: folder with ``manifest.csv`` and the images it names.
        scheme: class scheme name (:mod:`merkit.datasets.schemes`); labels must agree with it.
        channels: order in which the channels are fed to the model, from ``{"u", "v", "strain"}``.
        file_channels: the channel order stored in the files' RGB planes (default u, v, strain).
        with_apex: also load the ``apex`` column as an ``"apex"`` input (grey, (N, 1, S, S)).
        apex_size: resize apex crops to this side (pixels); ``None`` keeps the stored size.
        with_au_boxes: also fit dlib's 68 landmarks on each stored apex crop (before resizing) and give FRL-DGT's
            nine AU boxes as an ``"au_boxes"`` input, float32 (N, 9, 4) in units of the crop side
            (:func:`merkit.face.regions.image_au_boxes`; a crop where the detector finds no face is counted).
        with_face_points: likewise, HTNet's five face points (eye centres, nose tip, mouth corners) as a
            ``"face_points"`` input, float32 (N, 5, 2), (x, y) in units of the crop side
            (:func:`merkit.face.regions.face_points`). The landmarks are fitted once for both.
        diagnostics: receives those warnings; their counts also go to ``meta["diagnostics"]``.
        record: how the images were made, for ``meta["preprocessing"]`` (checkpoints keep it, and ``merkit
            predict`` rebuilds such images from videos with it): the folder's own (``export.json``) when it has
            one, else this, else the default record (the composite's recipe).

    Returns:
        FeatureSet with input ``"flow"``: float32 (N, len(channels), H, W) in [0, 1], and optionally ``"apex"``,
        ``"au_boxes"`` and ``"face_points"``.

    Raises:
        DataError: the manifest is empty or has an empty cell, a non-integer label or an emotion the scheme does
            not know (:func:`read_manifest`); a file is missing or unreadable, not 8-bit, has the wrong channel
            count, or a flow image is not the record's ``data.motion.size`` (or, without one, the first image's
            size); a sample id repeats (also once stripped and NFC-normalised: ids are normalised with a counted
            ``id-normalised`` warning, :func:`merkit.datasets.table.normalise_ids`); a label disagrees with the
            class scheme, or the folder's record differs from ``record``. Messages name the file or manifest line,
            and the dataset, subject and sample.
    """
    from merkit.datasets.schemes import get_scheme
    from merkit.datasets.table import new_sample_table

    root = Path(root)
    cls = get_scheme(scheme)
    man = read_manifest(root)
    unknown = [c for c in list(channels) + list(file_channels) if c not in FLOW_FILE_CHANNELS]
    if unknown or len(file_channels) != 3 or len(set(file_channels)) != 3:
        raise DataError(f"channels must be drawn from {FLOW_FILE_CHANNELS}; got channels={list(channels)}, "
                        f"file_channels={list(file_channels)}")
    record = _the_record(root, record)
    # The manifest's 'apex' column is an image path; the sample table's 'apex' is a frame number.
    man = man.rename(columns={"apex": "apex_path"})
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    table = new_sample_table(man.to_dict("records"), diagnostics)  # normalises ids; raises on duplicate ids
    _check_labels(table, cls, root / "manifest.csv")
    order = [list(file_channels).index(c) for c in channels]
    inputs, notes = _read_images(root, table, order, record, with_apex, apex_size, with_au_boxes, with_face_points,
                                 diagnostics)
    notes.insert(0, f"onset->apex flow images from {root.name}, channels {list(channels)}")
    notes[1:1] = _source_notes(root)
    table = table.drop(columns=[c for c in ("apex_path",) if c in table.columns])
    return FeatureSet(table, inputs, cls.classes, notes,
                      {"flow_channels": list(channels), "diagnostics": diagnostics.summary(),
                       "preprocessing": record.to_dict()})


# ---------------------------------------------------------------------------------------------------- writing

def file_stem(dataset: str, subject: str, sample: str) -> str:
    """The composite's file stem, ``<dataset>_<subject>_<sample>`` (``casme2_sub01_EP02_01f``)."""
    return f"{dataset}_{subject}_{sample}".replace("/", "-")


def flow_to_rgb8(maps: np.ndarray) -> np.ndarray:
    """(3, S, S) maps u, v, strain, each min-max stretched to [0, 1] -> uint8 (S, S, 3) RGB, 0..255."""
    return np.stack([np.rint(255.0 * m) for m in maps], axis=-1).astype(np.uint8)


def write_flow_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (S, S, 3) uint8 RGB flow image atomically; ``cv2.imwrite`` takes BGR, so the planes are reversed.

    Raises:
        OSError: the file could not be written.
    """
    write_image(path, np.ascontiguousarray(rgb[..., ::-1]))


def source_hash(paths: Sequence[str | Path]) -> str:
    """16 hex digits of SHA-256 over the bytes of the frame files ``paths``, in order: what an export recorded of
    the frames it read, so that a re-export sees a changed frame.

    Raises:
        OSError: a file cannot be read.
    """
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()[:16]


def _export_task(row: dict, record: Preprocessing):
    from merkit.inputs.build import row_inputs

    try:
        result = row_inputs(row, record)
    except DataError as error:
        return error
    frames = [int(n) for n in result.clip.frame_numbers]
    return (result.inputs["flow"], result.crop(result.apex), result.onset, result.apex, result.apex_source,
            " ".join(map(str, frames)), source_hash(list(result.clip.frame_paths)))


def _source_changed(row: dict, previous: dict) -> str | None:
    """Why an exported sample must be recomputed (its source frames changed, or the export did not record them),
    or ``None`` when the frames it read are unchanged."""
    from merkit.media import frame_number

    recorded, frames = previous.get("source_hash"), previous.get("frames")
    if not isinstance(recorded, str) or not isinstance(frames, str):
        return "the export did not record a hash of its source frames"
    by_number = {frame_number(p): str(p) for p in row["frames"]}
    wanted = [int(n) for n in frames.split()]
    missing = [n for n in wanted if n not in by_number]
    if missing:
        return f"its source frames {missing[:3]} are gone"
    try:
        current = source_hash([by_number[n] for n in wanted])
    except OSError as error:
        return f"its source frames cannot be read ({error})"
    return None if current == recorded else "its source frames changed since it was exported"


def _samples_to_compute(folder: ExportFolder, rows: list[dict], stems: list[str], previous: dict[str, dict],
                        diagnostics: Diagnostics) -> tuple[list[int], dict[int, dict]]:
    """The rows whose images are missing, not in the export's provenance, or made from frames that changed since
    (each of those counted: ``flow-export-recomputed``); and the ``previous`` records of the others, by row."""
    todo = []
    for i, stem in enumerate(stems):
        row = rows[i]
        if not (folder.flow(stem).is_file() and folder.apex(stem).is_file() and row["sample_id"] in previous):
            todo.append(i)
            continue
        why = _source_changed(row, previous[row["sample_id"]])
        if why is not None:
            diagnostics.warn("flow-export-recomputed", why, Where(row["dataset"], row["subject"], row["sample"]))
            todo.append(i)
    pending = set(todo)
    return todo, {i: previous[rows[i]["sample_id"]] for i in range(len(rows)) if i not in pending}


def _check_record(out: Path, record: Preprocessing, overwrite: bool) -> str:
    """:meth:`merkit.runfolder.ExportFolder.check`: ``new``, ``resume`` or ``replace``; reads only."""
    return ExportFolder(out).check(record.config_hash(), overwrite)


def _check_export_settings(record: Preprocessing, workers: int, on_error: str) -> None:
    """Raise :class:`ConfigError` unless ``record`` makes the composite's images (min-max stretched onset->apex
    flow), ``workers >= 1`` and ``on_error`` is known."""
    if record.motion.representations != ("onset_apex_flow",) or record.motion.normalise != "minmax":
        raise ConfigError("the composite format holds min-max stretched onset->apex flow: data.motion needs "
                          f"representations [onset_apex_flow] and normalise minmax, not "
                          f"{list(record.motion.representations)} / {record.motion.normalise}")
    if workers < 1 or on_error not in ON_ERROR:
        raise ConfigError(f"workers must be >= 1 and on_error one of {ON_ERROR}; got {workers}, {on_error!r}")


def _write_sample(folder: ExportFolder, stem: str, sample_id: str, result: tuple) -> dict:
    """Write one exported sample's flow PNG and apex JPEG (:func:`_export_task`'s ``result``); its provenance and
    sources record."""
    flow, apex, onset, apex_frame, source, frames, read_hash = result
    write_flow_png(folder.flow(stem), flow_to_rgb8(flow))
    # The composite stores its grey apex crops as 3-channel JPEGs.
    grey = apex if apex.ndim == 2 else cv2.cvtColor(apex, cv2.COLOR_RGB2GRAY)
    write_image(folder.apex(stem), cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    return {"sample_id": sample_id, "onset_frame": onset, "apex_frame": apex_frame, "apex_source": source,
            "frames": frames, "source_hash": read_hash}


def _write_tables(folder: ExportFolder, rows: list[dict], stems: list[str], provenance: list[dict],
                  classes: Sequence[str]) -> pd.DataFrame:
    """Write the export's ``manifest.csv``, ``provenance.csv`` and ``sources.csv`` for the exported ``rows`` (with
    their file ``stems`` and provenance records); return the manifest."""
    manifest = pd.DataFrame({
        "dataset": [r["dataset"] for r in rows],
        "subject": [r["subject"] for r in rows],
        "sample": [r["sample"] for r in rows],
        "label": [int(r["label"]) for r in rows],
        "emotion": [classes[int(r["label"])] for r in rows],
        "flow": [f"flow/{stem}.png" for stem in stems],
        "apex": [f"apex/{stem}.jpg" for stem in stems],
    }, columns=list(MANIFEST_COLUMNS))
    write_atomic(folder.file(ExportFolder.MANIFEST), lambda p: manifest.to_csv(p, index=False))
    _write_provenance(folder, provenance)
    return manifest


def _record_progress(folder: ExportFolder, provenance: dict[int, dict], saved: list[float]) -> None:
    """Record the samples written so far when :data:`CHECKPOINT_S` seconds have passed since ``saved[-1]`` (then
    appended), so that a stopped export resumes from there."""
    if time.monotonic() - saved[-1] >= CHECKPOINT_S:
        _write_provenance(folder, [provenance[k] for k in sorted(provenance)])
        saved.append(time.monotonic())


def _write_provenance(folder: ExportFolder, provenance: list[dict]) -> None:
    """Write ``provenance.csv`` and ``sources.csv`` for the samples whose images are written (each atomically;
    a sample in the first and not yet in the second is recomputed by a rerun)."""
    table = pd.DataFrame(provenance, columns=list(dict.fromkeys(PROVENANCE_COLUMNS + SOURCE_COLUMNS)))
    write_atomic(folder.file(ExportFolder.PROVENANCE), lambda p: table[list(PROVENANCE_COLUMNS)].to_csv(p, index=False))
    write_atomic(folder.file(ExportFolder.SOURCES), lambda p: table[list(SOURCE_COLUMNS)].to_csv(p, index=False))


def write_composite(table: pd.DataFrame, out: str | Path, record: Preprocessing = Preprocessing(),
                    scheme: str = "megc2019-3class", workers: int = 1, on_error: str = "skip",
                    diagnostics: Diagnostics | None = None, overwrite: bool = False,
                    progress: Callable[[int, int], None] | None = None, source: dict | None = None) -> pd.DataFrame:
    """Write a composite-format folder from a raw sample table.

    Args:
        table: sample table with ``frames`` and onset/apex/offset frame numbers (a raw dataset loader's output).
        out: output folder; gets ``flow/*.png``, ``apex/*.jpg``, ``manifest.csv``, ``provenance.csv``,
            ``sources.csv`` and ``export.json``.
        record: the preprocessing; it must compute ``onset_apex_flow`` with ``normalise: minmax`` (the format).
            The apex crop is the aligned apex frame, ``record.face.size`` pixels.
        scheme: class scheme giving ``label`` and ``emotion`` (the class name); rows it drops are counted.
        workers: Ray workers computing samples in parallel (1 computes in this process); this process alone writes.
        on_error: ``skip`` (default; counted, named) or ``raise`` for samples that fail (no face, missing frames).
        diagnostics: collects counted warnings (dropped and failed samples).
        overwrite: replace an export made with another record instead of raising (only the old export's own files
            are removed: the images its manifest lists, the manifest, provenance, sources and ``export.json``).
        progress: called with ``(done, total)`` after each sample.
        source: where the samples come from, kept in ``export.json`` (``merkit export-flow``: the release's dataset
            and path, and the settings of ``merkit synth`` when the release has its ``generator.json``).

    Returns:
        The manifest as written (columns :data:`MANIFEST_COLUMNS`).

    Raises:
        ConfigError: the record does not make composite images, ``workers < 1``, an unknown ``on_error``; ``out``
            is a file, or a folder that is neither empty nor a merkit export (checked before anything is written).
        DataError: a sample fails (with ``on_error="raise"``), no sample is left, or ``out`` holds an export with
            another record (unless ``overwrite``).
        OutputError: the disk refused a write.

    The samples written so far are recorded (``provenance.csv``, ``sources.csv``) every :data:`CHECKPOINT_S` s, so a
    stopped export's rerun computes only the rest (a first export has no ``manifest.csv``, so no data set, until it
    ends). A rerun reuses a sample's images only when the frames it read (``sources.csv``: ``frames``, ``source_hash``,
    the hash of their bytes) are unchanged; others, and those an older export did not hash, are recomputed with a
    counted warning (``flow-export-recomputed``).
    """
    from merkit.datasets.schemes import get_scheme

    _check_export_settings(record, workers, on_error)
    classes = get_scheme(scheme)
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    folder = ExportFolder(out)
    action = _check_record(folder.path, record, overwrite)
    rows = classes.apply(table, diagnostics).to_dict("records")
    stems = [file_stem(r["dataset"], r["subject"], r["sample"]) for r in rows]
    stamp = {"preprocessing": record.to_dict(), "record_hash": record.config_hash(), "scheme": classes.name,
             **({"source": source} if source else {})}
    folder.claim(action, stamp)
    todo, provenance = _samples_to_compute(folder, rows, stems, _read_provenance(folder), diagnostics)
    done = len(rows) - len(todo)
    saved = [time.monotonic()]

    def record_result(i: int, result) -> None:
        nonlocal done
        row = rows[i]
        if isinstance(result, DataError):
            if on_error == "raise":
                raise result
            diagnostics.warn("flow-export-failed", str(result), Where(row["dataset"], row["subject"], row["sample"]))
        else:
            provenance[i] = _write_sample(folder, stems[i], row["sample_id"], result)
            _record_progress(folder, provenance, saved)
        done += 1
        if progress is not None:
            progress(done, len(rows))

    from merkit.cluster import executor

    with executor(workers, None, workers, tasks=len(todo)) as ex:
        failures = ex.run(_export_task, [(rows[i], record) for i in todo], [rows[i]["sample_id"] for i in todo],
                          lambda k, result, node: record_result(todo[k], result), max_retries=2)
    if failures:  # a crash that is not bad data, twice: a bug, not a sample to skip
        raise RuntimeError(f"export crashed on {failures[0][0]}: {failures[0][1]}")
    return _finish(folder, rows, stems, provenance, classes.classes, stamp, diagnostics)


def _finish(folder: ExportFolder, rows: list[dict], stems: list[str], provenance: dict[int, dict],
            classes: Sequence[str], stamp: dict, diagnostics: Diagnostics) -> pd.DataFrame:
    """Write the tables of the exported rows (those with a ``provenance`` record) and the finished stamp, with the
    counts and the diagnostics; return the manifest.

    Raises:
        DataError: no sample was exported.
    """
    keep = sorted(provenance)
    if not keep:
        raise DataError("no sample left to export", hint="check the class scheme, the frames and the faces")
    manifest = _write_tables(folder, [rows[i] for i in keep], [stems[i] for i in keep],
                             [provenance[i] for i in keep], classes)
    folder.finish({**stamp, "samples": len(keep), "skipped": len(rows) - len(keep),
                   "diagnostics": diagnostics.summary()})
    return manifest


def _read_provenance(folder: ExportFolder) -> dict[str, dict]:
    """Per sample id, what an earlier export recorded: its provenance row joined with its sources row (an export
    without ``sources.csv`` gives rows without ``frames`` and ``source_hash``, which are then recomputed)."""
    path, sources = folder.file(ExportFolder.PROVENANCE), folder.file(ExportFolder.SOURCES)
    if not path.is_file() or not folder.file(ExportFolder.STAMP).is_file():
        return {}
    rows = {r["sample_id"]: r for r in pd.read_csv(path, dtype={"sample_id": str}).to_dict("records")}
    if sources.is_file():
        for r in pd.read_csv(sources, dtype={"sample_id": str, "frames": str, "source_hash": str}).to_dict("records"):
            if r["sample_id"] in rows:
                rows[r["sample_id"]].update(r)
    return rows

"""Composite-style export: onset->apex flow images and a manifest, as the MEGC2019 composite was released.

The MEGC2019 composite's inputs (STSTNet, FG 2019; reused by HTNet) are 28x28 RGB PNGs, R = u, G = v, B = optical
strain, each channel min-max stretched to 0..255 per image, plus a 224x224 grey apex crop and a ``manifest.csv``
with the columns ``dataset, subject, sample, label, emotion, flow, apex`` (``emotion`` holds the class name of the
3-class scheme). :func:`export_flow` writes exactly that format from a raw sample table, so that
:func:`merkit.datasets.flow_folder.load_flow_folder` reads the result, and a user holding the raw releases can
rebuild the benchmark inputs, or build the same inputs for another dataset.

Per sample: the onset and apex frames are read, the face is fitted on the onset frame and the same transform is
applied to the apex frame (:func:`merkit.face.clip.align_frames`). The motion stage that ``merkit preprocess``
caches (:class:`merkit.motion.stage.MotionStage`, representation ``onset_apex_flow``) then computes the flow on the
aligned crops (TV-L1 by default) and strain from it, resized; this module stretches each map to 0..255. Where a
sample has no apex (SMIC, unannotated videos) or ``apex="spot"``, the whole onset..offset span is aligned and the
motion stage spots the apex on it (:func:`merkit.motion.spotting.spot_apex`).

Besides the composite's files the folder gets ``export.json`` (the config, its hash and the counts) and
``provenance.csv`` (per sample the onset and apex frame numbers used and where the apex came from). A rerun with
the same config reuses the images already written (resumable); a different config refuses to mix with them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pandas as pd

from merkit.datasets.schemes import ClassScheme, get_scheme
from merkit.errors import DataError, Diagnostics, Where
from merkit.motion.flow import FLOW_METHODS

# Bump when a change in this module changes the exported images for an unchanged config.
EXPORT_VERSION = 1
MANIFEST_COLUMNS: tuple[str, ...] = ("dataset", "subject", "sample", "label", "emotion", "flow", "apex")
APEX_SOURCES: tuple[str, ...] = ("annotated", "spot", "annotated-or-spot")


@dataclass(frozen=True)
class FlowExportConfig:
    """What decides the exported images; :meth:`config_hash` keys the folder's cache.

    Attributes:
        size: side of the flow images, pixels (28 in the composite).
        method: flow backend, ``tvl1`` (the composite's), ``farneback`` or ``dis``.
        flow_params: the backend's parameters (:func:`merkit.motion.flow.compute_flow`).
        apex_size: side of the grey apex crop, pixels (224 in the composite).
        apex: ``annotated`` (the table's apex; a sample without one is an error), ``spot`` (always spot it) or
            ``annotated-or-spot`` (spot only where the table has none).
        spot_measure: the spotting measure (:func:`merkit.motion.spotting.spot_apex`).
        face_size: side of the aligned face crop on which flow is computed, pixels.
        face_crop: the face stage's crop (``slstt``, ``eyes`` or ``landmarks``; :mod:`merkit.face.crop`).
        face_align: the face stage's alignment (``similarity`` or ``piecewise-affine``).
        detector: dlib detector, ``hog`` or ``cnn``.
    """

    size: int = 28
    method: str = "tvl1"
    flow_params: dict[str, Any] = field(default_factory=dict)
    apex_size: int = 224
    apex: str = "annotated-or-spot"
    spot_measure: str = "flow"
    face_size: int = 224
    face_crop: str = "slstt"
    face_align: str = "similarity"
    detector: str = "hog"

    def __post_init__(self) -> None:
        if self.method not in FLOW_METHODS:
            raise ValueError(f"method must be one of {FLOW_METHODS}, got {self.method!r}")
        if self.apex not in APEX_SOURCES:
            raise ValueError(f"apex must be one of {APEX_SOURCES}, got {self.apex!r}")
        if min(self.size, self.apex_size, self.face_size) < 2:
            raise ValueError("size, apex_size and face_size must be at least 2 pixels")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """12 hex digits identifying the exported images: the config and :data:`EXPORT_VERSION`."""
        payload = json.dumps({"version": EXPORT_VERSION, **self.to_dict()}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def face_config(self):
        """The :class:`merkit.face.clip.FaceConfig` for the alignment (grey crops, one transform per clip)."""
        from merkit.face.clip import FaceConfig

        return FaceConfig(detector=self.detector, align=self.face_align, crop=self.face_crop, size=self.face_size,
                          color="grey", reference="onset", mode="clip")


@dataclass
class SampleFlow:
    """The exported images of one sample.

    Attributes:
        flow: uint8 (S, S, 3) in RGB order: R = u, G = v, B = strain, each channel stretched to 0..255.
        apex: uint8 (A, A) grey aligned apex crop.
        onset_frame, apex_frame: the frame numbers used.
        apex_source: ``annotated`` or ``spotted``.
    """

    flow: np.ndarray
    apex: np.ndarray
    onset_frame: int
    apex_frame: int
    apex_source: str


def file_stem(dataset: str, subject: str, sample: str) -> str:
    """The composite's file stem, ``<dataset>_<subject>_<sample>`` (``casme2_sub01_EP02_01f``)."""
    return f"{dataset}_{subject}_{sample}".replace("/", "-").replace(os.sep, "-")


def flow_to_rgb8(maps: np.ndarray) -> np.ndarray:
    """(3, S, S) float maps u, v, strain -> uint8 (S, S, 3) RGB, each channel min-max stretched to 0..255."""
    from merkit.motion.representations import minmax

    return np.stack([np.rint(255.0 * minmax(m)) for m in maps], axis=-1).astype(np.uint8)


def write_flow_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (S, S, 3) uint8 RGB flow image; ``cv2.imwrite`` takes BGR, so the planes are reversed first.

    Raises:
        OSError: the file could not be written.
    """
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"could not write {path}")


def _frame_number(row: dict, name: str) -> int | None:
    value = row.get(name)
    return None if value is None or pd.isna(value) else int(value)


def sample_flow(row: dict, config: FlowExportConfig = FlowExportConfig()) -> SampleFlow:
    """Compute one sample's composite-style images from its raw frames.

    Args:
        row: a sample-table row as a dict (``dataset, subject, sample, onset, apex, offset, frames``).
        config: the export config.

    Returns:
        :class:`SampleFlow`.

    Raises:
        DataError: the sample has no frames, lacks the onset (or, with ``apex="annotated"``, the apex), a frame is
            missing or unreadable; FaceNotFoundError: no face on the onset frame. Messages name the sample.
    """
    from merkit.datasets.frames import frame_at, frame_number
    from merkit.face.clip import align_frames, read_frame
    from merkit.motion.stage import MotionConfig, MotionStage

    where = Where(row["dataset"], row["subject"], row["sample"])
    frames = list(row["frames"])
    if not frames:
        raise DataError("the sample has no frames", where, hint="load the raw release (frames column)")
    onset, apex, offset = (_frame_number(row, n) for n in ("onset", "apex", "offset"))
    if onset is None:
        raise DataError("the sample has no onset frame number", where)
    spot = config.apex == "spot" or (config.apex == "annotated-or-spot" and apex is None)
    if apex is None and not spot:
        raise DataError("the sample has no apex frame number", where,
                        hint="use apex='annotated-or-spot' (--apex annotated-or-spot) to spot it")
    if spot:  # align the whole onset..offset span, on which the motion stage spots the apex
        last = offset if offset is not None else frame_number(frames[-1])
        paths = [p for p in frames if onset <= frame_number(p) <= last]
        if not paths or frame_number(paths[0]) != onset:
            frame_at(frames, onset, where)  # raises, naming the missing onset frame
    else:
        paths = [frame_at(frames, onset, where), frame_at(frames, apex, where)]
    sample_id = row.get("sample_id") or f"{row['dataset']}/{row['subject']}/{row['sample']}"
    numbers = [frame_number(p) for p in paths]
    clip = align_frames([read_frame(p, where) for p in paths], config.face_config(), 0, where,
                        sample_id=sample_id, frame_paths=[str(p) for p in paths], frame_numbers=numbers)
    motion = MotionConfig(representations=("onset_apex_flow",), method=config.method, flow_params=config.flow_params,
                          size=config.size, normalise="none", apex=config.apex, spot_measure=config.spot_measure)
    arrays, meta = MotionStage(motion, {sample_id: (onset, None if spot else apex, None)}).compute(clip)
    apex_crop = cv2.resize(clip.frames[numbers.index(meta["apex_frame"])], (config.apex_size, config.apex_size),
                           interpolation=cv2.INTER_AREA)
    return SampleFlow(flow_to_rgb8(arrays["onset_apex_flow"]), apex_crop, onset, meta["apex_frame"],
                      meta["apex_source"])


def _sample_flow_task(args: tuple[dict, FlowExportConfig]) -> SampleFlow:
    cv2.setNumThreads(1)  # one process per core: OpenCV's own threads would oversubscribe them
    return sample_flow(*args)


def _check_cache(out: Path, config: FlowExportConfig, overwrite: bool) -> None:
    meta = out / "export.json"
    if not meta.is_file():
        return
    previous = json.loads(meta.read_text()).get("config_hash")
    if previous == config.config_hash():
        return
    if not overwrite:
        raise DataError(f"{out} holds an export made with another config (hash {previous}, now "
                        f"{config.config_hash()})", hint="choose another output folder or pass overwrite=True "
                        "(--overwrite)")
    for name in ("flow", "apex"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("manifest.csv", "provenance.csv", "export.json"):
        (out / name).unlink(missing_ok=True)


def export_flow(
    table: pd.DataFrame,
    out: str | Path,
    config: FlowExportConfig = FlowExportConfig(),
    scheme: str | ClassScheme = "megc2019-3class",
    workers: int = 1,
    diagnostics: Diagnostics | None = None,
    skip_failed: bool = False,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Write a composite-style flow folder from a raw sample table.

    Args:
        table: sample table with ``frames`` and onset/apex/offset frame numbers (a raw dataset loader's output).
        out: output folder; gets ``flow/*.png``, ``apex/*.jpg``, ``manifest.csv``, ``provenance.csv`` and
            ``export.json``.
        config: :class:`FlowExportConfig`.
        scheme: class scheme giving ``label`` and ``emotion`` (the class name); rows it drops are counted.
        workers: processes computing samples in parallel (1 computes in this process).
        diagnostics: collects counted warnings (dropped and failed samples).
        skip_failed: skip (and count) samples that raise :class:`DataError` (no face, missing frames) instead of
            stopping.
        overwrite: replace an export made with another config instead of raising.
        progress: called with ``(done, total)`` after each sample.

    Returns:
        The manifest as written (columns :data:`MANIFEST_COLUMNS`).

    Raises:
        DataError: a sample fails (unless ``skip_failed``), no sample is left, or ``out`` holds an export with
            another config (unless ``overwrite``).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    out = Path(out)
    _check_cache(out, config, overwrite)
    (out / "flow").mkdir(parents=True, exist_ok=True)
    (out / "apex").mkdir(parents=True, exist_ok=True)
    labelled = scheme.apply(table, diagnostics)
    rows = labelled.to_dict("records")
    stems = [file_stem(r["dataset"], r["subject"], r["sample"]) for r in rows]
    previous = _read_provenance(out)
    todo = [i for i, stem in enumerate(stems)
            if not ((out / "flow" / f"{stem}.png").is_file() and (out / "apex" / f"{stem}.jpg").is_file()
                    and rows[i]["sample_id"] in previous)]
    pending = set(todo)
    provenance = {i: previous[rows[i]["sample_id"]] for i in range(len(rows)) if i not in pending}
    done = len(rows) - len(todo)

    def record(i: int, result: SampleFlow | DataError) -> None:
        nonlocal done
        row = rows[i]
        if isinstance(result, DataError):
            if not skip_failed:
                raise result
            diagnostics.warn("flow-export-failed", str(result), Where(row["dataset"], row["subject"], row["sample"]))
        else:
            write_flow_png(out / "flow" / f"{stems[i]}.png", result.flow)
            # The composite stores its grey apex crops as 3-channel JPEGs.
            apex_path = out / "apex" / f"{stems[i]}.jpg"
            if not cv2.imwrite(str(apex_path), cv2.cvtColor(result.apex, cv2.COLOR_GRAY2BGR)):
                raise OSError(f"could not write {apex_path}")
            provenance[i] = {"sample_id": row["sample_id"], "onset_frame": result.onset_frame,
                             "apex_frame": result.apex_frame, "apex_source": result.apex_source}
        done += 1
        if progress is not None:
            progress(done, len(rows))

    if workers == 1 or len(todo) < 2:
        for i in todo:
            try:
                record(i, sample_flow(rows[i], config))
            except DataError as err:
                record(i, err)
    else:
        # spawn, not fork: a child forked after OpenCV started its thread pool can deadlock in that pool.
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {i: pool.submit(_sample_flow_task, (rows[i], config)) for i in todo}
            try:
                for i, future in futures.items():
                    try:
                        result = future.result()
                    except DataError as err:
                        result = err
                    record(i, result)
            except BaseException:
                pool.shutdown(cancel_futures=True)  # stop at the first failure instead of finishing the queue
                raise
    keep = sorted(provenance)
    if not keep:
        raise DataError("no sample left to export", hint="check the class scheme, the frames and the faces")
    manifest = pd.DataFrame({
        "dataset": [rows[i]["dataset"] for i in keep],
        "subject": [rows[i]["subject"] for i in keep],
        "sample": [rows[i]["sample"] for i in keep],
        "label": [int(rows[i]["label"]) for i in keep],
        "emotion": [scheme.classes[int(rows[i]["label"])] for i in keep],
        "flow": [f"flow/{stems[i]}.png" for i in keep],
        "apex": [f"apex/{stems[i]}.jpg" for i in keep],
    }, columns=list(MANIFEST_COLUMNS))
    manifest.to_csv(out / "manifest.csv", index=False)
    pd.DataFrame([provenance[i] for i in keep]).to_csv(out / "provenance.csv", index=False)
    (out / "export.json").write_text(json.dumps({
        "config": config.to_dict(), "config_hash": config.config_hash(), "export_version": EXPORT_VERSION,
        "scheme": scheme.name, "samples": len(keep), "skipped": len(rows) - len(keep),
        "diagnostics": diagnostics.summary(),
    }, indent=2, default=str))
    return manifest


def _read_provenance(out: Path) -> dict[str, dict]:
    path = out / "provenance.csv"
    if not path.is_file() or not (out / "export.json").is_file():
        return {}
    return {r["sample_id"]: r for r in pd.read_csv(path, dtype={"sample_id": str}).to_dict("records")}


def export_dataset_flow(name: str, root: str | Path, out: str | Path, **kwargs) -> pd.DataFrame:
    """Load a raw dataset by name (:func:`merkit.datasets.registry.load_dataset`) and :func:`export_flow` it.

    Args:
        name: dataset name (``casme2``, ``samm``, ``smic``, ``synthetic``, ...).
        root: the release folder.
        out: output folder.
        kwargs: passed to :func:`export_flow`.

    Returns:
        The manifest as written.
    """
    from merkit.datasets.registry import load_dataset

    table = load_dataset(name, root)
    return export_flow(table, out, **kwargs)

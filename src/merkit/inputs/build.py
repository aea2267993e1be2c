"""A sample table to model inputs: :func:`build_inputs`, cached per clip and parallel over clips, with one skip
policy (:func:`merkit.inputs.load.load_inputs` chooses between it and a composite-format folder).

Cache layout under the cache root ``CACHE`` (default :func:`release_cache_dir` of the release;
:class:`merkit.runfolder.CacheFolder` owns it)::

    CACHE/inputs-<record hash>/record.json                 the stamp: kind, record hash, the preprocessing record
    CACHE/inputs-<record hash>/<dataset>/<subject>/<sample>/inputs.npz   model-input key -> array
    CACHE/inputs-<record hash>/<dataset>/<subject>/<sample>/meta.json    written last: frames used, their
                                                                           fingerprint, onset/apex/offset, notes

A clip is reused only when its ``meta.json`` names the same source frames, unchanged (paths, sizes and modification
times), and the same annotated onset, apex and offset; otherwise it is recomputed. Every file is written under a
temporary name and moved into place, so a killed run leaves no half clip that looks finished.

With ``workers > 1`` or a Ray cluster, clips are Ray tasks (:mod:`merkit.cluster`): the workers compute, and this
process alone writes the cache as results arrive.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from merkit.errors import ConfigError, DataError, Diagnostics, Where
from merkit.features import FeatureSet
from merkit.files import write_atomic, write_json
from merkit.inputs.clip import ClipInputs
from merkit.inputs.record import ON_ERROR, Preprocessing
from merkit.runfolder import CacheFolder

def default_cache_dir() -> Path:
    """Where merkit caches derived data: ``$MERKIT_CACHE``, else ``$XDG_CACHE_HOME/merkit``, else
    ``~/.cache/merkit``.

    Raises:
        ConfigError: ``$MERKIT_CACHE`` names a file, or a folder (or, when it does not exist yet, the nearest
            folder above it) that this process cannot write; the message names the variable and the path.
    """
    if os.environ.get("MERKIT_CACHE"):
        return usable_folder(Path(os.environ["MERKIT_CACHE"]), "MERKIT_CACHE")
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "merkit"


def usable_folder(path: Path, name: str) -> Path:
    """``path``, checked to be a folder merkit can create and write (``name`` says where the path came from).

    Raises:
        ConfigError: ``path`` is a file, or it (or the nearest existing folder above it) is not writable.
    """
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{name}={path}: {existing} is a file, not a folder; point {name} at a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{name}={path}: the folder {existing} is not writable; point {name} at a writable "
                          "folder")
    return path


def release_cache_dir(path: str | Path) -> Path:
    """The default inputs cache of one release: :func:`default_cache_dir` / ``preprocess`` /
    ``<release folder name>-<8 hex digits of its absolute path>``.

    One folder per release: two releases can share sample ids (every synthetic release, a dataset extracted twice),
    and the cache would notice and recompute, but two runs on them would keep evicting each other's clips.
    """
    root = Path(path).expanduser().resolve()
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    return default_cache_dir() / "preprocess" / f"{root.name}-{digest}"


def _number(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def source_fingerprint(paths: list[str]) -> str | None:
    """16 hex digits over the frames' absolute paths, sizes and modification times; ``None`` when one is missing."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            return None
        digest.update(f"{os.path.abspath(path)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def row_inputs(row: dict[str, Any], record: Preprocessing) -> ClipInputs:
    """:func:`clip_inputs` of one sample-table row; only the frames it needs are decoded (:mod:`merkit.media`).

    Raises:
        DataError: no frames, a gap in the frame numbers between onset and offset, an unreadable frame, or as
            :func:`clip_inputs`; messages name the sample.
    """
    from merkit.datasets.frames import describe_numbers, missing_frames
    from merkit.inputs.clip import clip_inputs  # looked up per call: the one per-clip function, also under test
    from merkit.media import FrameFiles, frame_number

    where = Where(row["dataset"], row["subject"], row["sample"])
    paths = [str(p) for p in row["frames"]]
    if not paths:
        raise DataError("the sample has no frames", where, hint="load the raw release (frames column)")
    marks = {k: _number(row.get(k)) for k in ("onset", "apex", "offset")}
    numbers = [frame_number(p) for p in paths]
    # An onset or offset that is not a frame at all is clip_inputs' error to report, by name.
    bounds = [m if m in numbers else None for m in (marks["onset"], marks["offset"])]
    gaps = missing_frames(paths, *bounds)
    if gaps:
        raise DataError(f"frames {describe_numbers(gaps)} are missing between onset and offset", where,
                        hint="a gap distorts every multi-frame input; restore the frames (merkit datasets check "
                             "lists every gap)")
    return clip_inputs(FrameFiles(paths, where), numbers, record, where=where,
                       sample_id=row["sample_id"], frame_paths=paths, **marks)


class InputsCache:
    """Cached :class:`ClipInputs` of one record under a cache root; the layout and its rules are
    :class:`merkit.runfolder.CacheFolder`'s.

    Raises:
        ConfigError: (on construction) the record's ``inputs-<hash>`` folder holds something merkit did not write.
    """

    def __init__(self, root: str | Path, record: Preprocessing):
        self.record = record
        self.store = CacheFolder(root, record.config_hash())
        self.dir = self.store.dir
        self.store.check()  # before any clip is computed

    def folder(self, sample_id: str) -> Path:
        return self.store.clip(sample_id)

    def load(self, row: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict] | None:
        """The cached inputs and meta of ``row``, or ``None`` when absent or made from other frames or marks."""
        folder = self.folder(row["sample_id"])
        meta_path = folder / CacheFolder.META
        if not meta_path.is_file():
            return None
        meta = json.loads(meta_path.read_text())
        marks = [_number(row.get(k)) for k in ("onset", "apex", "offset")]
        paths = meta.get("frame_paths", [])
        if (meta.get("marks") != marks or not set(paths) <= {str(p) for p in row["frames"]}
                or source_fingerprint(paths) != meta.get("source_fingerprint")):
            return None
        with np.load(folder / CacheFolder.INPUTS) as data:
            return {k: data[k] for k in data.files}, meta

    def save(self, row: dict[str, Any], inputs: dict[str, np.ndarray], meta: dict) -> None:
        """Write one clip's inputs, then its ``meta.json`` (:func:`clip_meta`), each atomically; the first save
        stamps the folder (``record.json``).

        Raises:
            OutputError: the disk refused a write.
        """
        self.store.claim(self.record.to_dict())
        folder = self.folder(row["sample_id"])

        def savez(path: Path) -> None:
            with open(path, "wb") as handle:  # a handle: np.savez appends ".npz" to a path
                np.savez(handle, **inputs)

        write_atomic(folder / CacheFolder.INPUTS, savez)
        write_json(folder / CacheFolder.META, meta)


def clip_meta(row: dict[str, Any], result: ClipInputs) -> dict:
    """What the cache keeps about one clip besides its inputs: the annotation it was made from, its source frames
    and their fingerprint, the frames used, the face box and the notes."""
    return {"sample_id": row["sample_id"], "marks": [_number(row.get(k)) for k in ("onset", "apex", "offset")],
            "frame_paths": list(result.clip.frame_paths),
            "source_fingerprint": source_fingerprint(list(result.clip.frame_paths)),
            "onset_frame": result.onset, "apex_frame": result.apex, "offset_frame": result.offset,
            "apex_source": result.apex_source, "face_box": list(result.clip.face_box), "notes": result.notes}


def _compute(row: dict[str, Any], record: Preprocessing) -> tuple[dict, dict] | DataError:
    """One clip, anywhere (this process or a Ray worker): its inputs and meta, or the DataError; it writes nothing."""
    try:
        result = row_inputs(row, record)
    except DataError as error:
        return error
    return result.inputs, clip_meta(row, result)


def _gather(rows: list[dict], results: dict, record: Preprocessing,
            diagnostics: Diagnostics) -> tuple[list[int], dict[str, list], int]:
    """The rows that yielded inputs, their arrays per input key, and how many failed; each failed clip, and each
    note a clip carries, becomes a counted warning naming it."""
    from merkit.face.landmarks import FaceLostError, FaceNotFoundError

    keep, arrays = [], {key: [] for key in record.input_keys}
    failed = 0
    for i, row in enumerate(rows):
        where = Where(row["dataset"], row["subject"], row["sample"])
        result = results[i]
        if isinstance(result, DataError):
            failed += 1
            kind = ("face-lost" if isinstance(result, FaceLostError) else
                    "face-not-found" if isinstance(result, FaceNotFoundError) else "clip-failed")
            diagnostics.warn(kind, f"skipped: {str(result).split(' [')[0]}", where)
            continue
        inputs, meta = result
        for note in meta.get("notes", []):
            kind, _, message = note.partition(": ")
            diagnostics.warn(kind, message, where)
        for key in record.input_keys:
            arrays[key].append(inputs[key])
        keep.append(i)
    return keep, arrays, failed


def _record_notes(record: Preprocessing) -> list[str]:
    """What the report says of the inputs a record builds."""
    notes = [f"inputs: {record.describe()}"]
    if "onset_apex_frames" in record.motion.representations:
        mode = record.motion.jitter_mode
        notes.append(f"onset/apex crops with windows of +-{record.motion.jitter} frames for temporal jitter "
                     "(training only)" + ("" if mode == "symmetric" else f", jitter mode {mode}"))
    if "ss_pairs" in record.motion.representations:
        notes.append(f"{record.motion.ss_pairs} self-supervised frame pairs per clip, drawn once at preprocessing")
    return notes


def build_inputs(table: pd.DataFrame, record: Preprocessing, scheme: str = "megc2019-3class",
                 cache: str | Path | None = None, workers: int = 1, on_error: str = "skip",
                 diagnostics: Diagnostics | None = None,
                 progress: Callable[[int, int], None] | None = None, address: str | None = None) -> FeatureSet:
    """The model inputs of every sample of a raw sample table, as a :class:`~merkit.features.FeatureSet`.

    Args:
        table: a sample table with ``frames`` and onset/apex/offset frame numbers (a dataset loader's output).
        record: the face and motion settings.
        scheme: the class scheme that labels the rows; rows it drops are counted.
        cache: cache root (``None``: no cache). Only this process writes it.
        workers: Ray workers computing clips in parallel (1 computes in this process).
        on_error: ``skip`` (default) leaves out a clip that fails on bad data (no face, unreadable or missing
            frames), with a counted warning naming it; ``raise`` stops at the first such clip.
        diagnostics: receives the counted warnings (also in ``meta["diagnostics"]``).
        progress: called with ``(done, total)`` after each clip.
        address: a Ray cluster to compute the clips on (or ``$RAY_ADDRESS``; :func:`merkit.cluster.ray_session`).
            Its workers must see the release's frame files at the same paths (a shared file system).

    Returns:
        FeatureSet with one input per key of ``record.input_keys`` (float32 except ``jitter_bounds``, int64;
        first dimension = samples), ``meta["preprocessing"]`` (the record), ``meta["diagnostics"]``,
        ``meta["clips"]`` (computed, cached and failed counts, seconds, workers) and, for ``onset_apex_flow``,
        ``meta["flow_channels"]``.

    Raises:
        DataError: a clip fails and ``on_error="raise"``, or no clip is left.
        ConfigError: an unknown ``on_error`` or ``workers < 1``.
    """
    from merkit.datasets.schemes import get_scheme

    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    start = time.perf_counter()
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    classes = get_scheme(scheme)
    labelled = classes.apply(table, diagnostics)
    rows = labelled.to_dict("records")
    store = InputsCache(cache, record) if cache is not None else None
    results: dict[int, tuple[dict, dict] | DataError] = {}
    for i, row in enumerate(rows):
        found = store.load(row) if store is not None else None
        if found is not None:
            results[i] = found
    cached, todo = len(results), [i for i in range(len(rows)) if i not in results]

    def collect(i: int, result: tuple[dict, dict] | DataError, node: str = "") -> None:
        if isinstance(result, DataError):
            if on_error == "raise":
                raise result
        elif store is not None:
            store.save(rows[i], *result)  # the driver alone writes the cache
        results[i] = result
        if progress is not None:
            progress(len(results), len(rows))

    from merkit.cluster import executor

    with executor(workers, address, workers, tasks=len(todo)) as ex:
        failures = ex.run(_compute, [(rows[i], record) for i in todo], [rows[i]["sample_id"] for i in todo],
                          lambda k, result, node: collect(todo[k], result, node), max_retries=2)
    if failures:  # a crash that is not bad data, twice: a bug, not a clip to skip
        raise RuntimeError(f"preprocessing crashed on {failures[0][0]}: {failures[0][1]}")
    keep, arrays, failed = _gather(rows, results, record, diagnostics)
    if not keep:
        raise DataError("no sample left to build inputs from", hint="check the class scheme, the frames and the faces")
    import torch

    tensors = {key: torch.from_numpy(np.stack(values)) for key, values in arrays.items()}
    notes = _record_notes(record)
    meta = {"preprocessing": record.to_dict(), "diagnostics": diagnostics.summary(),
            "clips": {"clips": len(rows), "computed": len(todo) - failed, "cached": cached, "failed": failed,
                      "seconds": round(time.perf_counter() - start, 3), "workers": workers}}
    if "flow" in tensors:
        meta["flow_channels"] = ["u", "v", "strain"]
    return FeatureSet(labelled.iloc[keep].reset_index(drop=True), tensors, classes.classes, notes, meta)

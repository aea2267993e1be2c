"""Per-clip cache of aligned face clips: keyed by config hash, resumable, parallel over clips.

Layout under the cache root ``OUT`` given to :func:`preprocess`::

    OUT/face-<hash>/config.json                      the FaceConfig, its hash and FACE_CACHE_VERSION
    OUT/face-<hash>/<dataset>/<subject>/<sample>/    one folder per clip
        frames/000046.png ...                        aligned frames, lossless, named by frame number
        clip.npz                                     landmarks (aligned and source), transform(s)
        meta.json                                    written last: its presence marks the clip as done
        <stage>-<stage hash>/                        outputs of later stages (see below)
    OUT/face-<hash>/summary.json, failures.csv       the last run's counts and failures

A different :class:`~merkit.face.clip.FaceConfig` gives a different ``<hash>``, so outputs of two configs never mix;
re-running with the same config skips every clip whose ``meta.json`` exists and whose source is unchanged, so an
interrupted run resumes where it stopped. The source check (:func:`is_fresh`) compares the cached clip's frame
paths with the row's and a fingerprint of their sizes and modification times: two releases whose sample ids
coincide (two synthetic releases, a re-extracted dataset) never share a cache entry; a stale entry is removed,
with its stage outputs, and recomputed. Files are written under temporary names and renamed into place, so a
killed worker leaves no half clip that looks done. Failed clips are not cached: the next run tries them again.

The seam for later stages (motion features)
-------------------------------------------
The unit of work is one clip: :func:`merkit.face.clip.align_sample` turns a sample-table row into an
:class:`~merkit.face.clip.AlignedClip` (frames (T, S, S[, 3]) uint8, landmarks (68, 2) in the aligned frame, the
transform, the source frame paths). A later stage plugs in as a :class:`ClipStage`: an object with a ``name``, a
``config_hash()`` and ``__call__(clip, out_dir)`` writing its files into ``out_dir``. Pass stages to
:func:`preprocess`; each worker runs them on each clip right after alignment (or after loading it from the cache),
in ``<clip folder>/<name>-<config_hash>/``, and marks a stage done with a ``DONE`` file written last. Stages are
cached by their own hash, inside the face hash, so changing the flow parameters recomputes the flow but not the
alignment. Stages must be picklable (a module-level class) to run with ``workers > 1``.

Workers are started with ``spawn``: OpenCV's thread pool does not survive ``fork`` (opencv/opencv#5150). A script
calling :func:`preprocess` with ``workers > 1`` therefore needs the ``if __name__ == "__main__":`` guard.

Read a cached clip back with :func:`load_aligned_clip` or :func:`load_clip`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np
import pandas as pd

from merkit.errors import DataError, Diagnostics, Where
from merkit.face.align import FaceTransform
from merkit.face.clip import FACE_CACHE_VERSION, AlignedClip, FaceConfig, align_sample
from merkit.face.landmarks import FaceNotFoundError


@runtime_checkable
class ClipStage(Protocol):
    """A per-clip stage run after alignment (e.g. optical flow), cached in its own folder by its own hash."""

    name: str

    def config_hash(self) -> str:
        """Identifies the stage's output (its parameters and version)."""

    def __call__(self, clip: AlignedClip, out_dir: Path) -> None:
        """Compute the stage's outputs for ``clip`` and write them into ``out_dir`` (which exists)."""


def cache_dir(out: str | Path, config: FaceConfig) -> Path:
    """The folder of one config's cache: ``out/face-<hash>``."""
    return Path(out) / f"face-{config.config_hash()}"


def clip_dir(out: str | Path, config: FaceConfig, sample_id: str) -> Path:
    """The folder of one clip: ``out/face-<hash>/<dataset>/<subject>/<sample>``."""
    return cache_dir(out, config) / sample_id


def stage_dir(clip_folder: Path, stage: ClipStage) -> Path:
    """The output folder of ``stage`` for one clip."""
    return Path(clip_folder) / f"{stage.name}-{stage.config_hash()}"


def is_cached(folder: str | Path) -> bool:
    """Whether the clip folder holds a complete clip (``meta.json`` is written last)."""
    return (Path(folder) / "meta.json").is_file()


def source_fingerprint(paths: Sequence[str]) -> str | None:
    """16 hex digits over the frames' absolute paths, sizes and modification times; ``None`` when a frame has no
    file (frames given as arrays) or cannot be read."""
    digest = hashlib.sha256()
    for path in paths:
        if not path:
            return None
        try:
            info = os.stat(path)
        except OSError:
            return None
        digest.update(f"{os.path.abspath(path)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def is_fresh(folder: str | Path, frames: Sequence[Any]) -> bool:
    """Whether the cached clip in ``folder`` was made from these source ``frames`` as they are now.

    True when every frame the cached clip used is among ``frames`` (the row's paths) and their fingerprint
    (:func:`source_fingerprint`) is unchanged since the clip was written.
    """
    meta = json.loads((Path(folder) / "meta.json").read_text())
    used = meta.get("frame_paths", [])
    expected = meta.get("source_fingerprint")
    return (expected is not None and set(used) <= {str(f) for f in frames}
            and source_fingerprint(used) == expected)


def _replace_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # A file object, because np.savez appends ".npz" to a temporary name given as a path.
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def save_aligned_clip(clip: AlignedClip, folder: str | Path) -> Path:
    """Write ``clip`` into ``folder`` (frames as PNG, arrays in ``clip.npz``, ``meta.json`` last); return it."""
    folder = Path(folder)
    frames_dir = folder / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for number, frame in zip(clip.frame_numbers, clip.frames):
        name = f"{number:06d}.png"
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if frame.ndim == 3 else frame
        target = frames_dir / name
        tmp = target.with_name(f".{name}.{os.getpid()}.tmp.png")
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"cannot write {tmp}")
        os.replace(tmp, target)
        names.append(name)
    per_transform = [t.to_arrays() for t in clip.transforms]
    arrays: dict[str, np.ndarray] = {
        "landmarks": clip.landmarks,
        "source_landmarks": clip.source_landmarks,
        # One row per transform: a single row in clip mode, one per frame in per-frame mode.
        **{key: np.stack([a[key] for a in per_transform]) for key in per_transform[0]},
    }
    if clip.frame_landmarks is not None:
        arrays["frame_landmarks"] = clip.frame_landmarks
    if clip.stabilisation is not None:
        arrays["stabilisation"] = clip.stabilisation
    _replace_write(folder / "clip.npz", lambda p: _savez(p, arrays))
    meta = {
        "sample_id": clip.sample_id,
        "config_hash": clip.config_hash,
        "frame_files": names,
        "frame_paths": clip.frame_paths,
        "frame_numbers": clip.frame_numbers,
        "reference_index": clip.reference_index,
        "face_box": list(clip.face_box),
        "n_faces": clip.n_faces,
        "notes": clip.notes,
        "source_fingerprint": source_fingerprint(clip.frame_paths),
    }
    _replace_write(folder / "meta.json", lambda p: p.write_text(json.dumps(meta, indent=1)))
    return folder


def load_aligned_clip(folder: str | Path) -> AlignedClip:
    """Read a clip written by :func:`save_aligned_clip`.

    Raises:
        FileNotFoundError: the folder holds no complete clip.
    """
    folder = Path(folder)
    if not is_cached(folder):
        raise FileNotFoundError(f"no cached clip in {folder}")
    meta = json.loads((folder / "meta.json").read_text())
    frames = []
    for name in meta["frame_files"]:
        image = cv2.imread(str(folder / "frames" / name), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise FileNotFoundError(f"cached frame {folder / 'frames' / name} is missing or unreadable")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image)
    with np.load(folder / "clip.npz") as data:
        arrays = {k: data[k] for k in data.files}
    keys = [k for k in arrays if k.startswith("transform_")]
    transforms = [FaceTransform.from_arrays({k: arrays[k][i] for k in keys})
                  for i in range(len(arrays["transform_matrix"]))]
    return AlignedClip(
        sample_id=meta["sample_id"],
        frames=np.stack(frames),
        frame_paths=meta["frame_paths"],
        frame_numbers=meta["frame_numbers"],
        reference_index=meta["reference_index"],
        landmarks=arrays["landmarks"],
        source_landmarks=arrays["source_landmarks"],
        face_box=tuple(meta["face_box"]),
        n_faces=meta["n_faces"],
        transforms=transforms,
        config_hash=meta["config_hash"],
        frame_landmarks=arrays.get("frame_landmarks"),
        stabilisation=arrays.get("stabilisation"),
        notes=meta.get("notes", []),
    )


def load_clip(out: str | Path, sample_id: str, config: FaceConfig = FaceConfig()) -> AlignedClip:
    """The cached :class:`AlignedClip` of ``sample_id`` under the cache root ``out`` for ``config``."""
    return load_aligned_clip(clip_dir(out, config, sample_id))


@dataclass
class ClipResult:
    """What one worker reports about one clip: ``status`` is ``aligned``, ``cached`` or ``failed``; ``seconds`` is
    wall time and ``cpu_seconds`` the CPU time of the worker process (all its threads) spent on the clip."""

    sample_id: str
    dataset: str
    subject: str
    sample: str
    status: str
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    n_frames: int = 0
    n_faces: int = 0
    error_kind: str = ""
    message: str = ""
    stages_run: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def process_clip(row: dict[str, Any], config: FaceConfig, out: str | Path,
                 stages: Sequence[ClipStage] = (), overwrite: bool = False) -> ClipResult:
    """Align (or load from the cache) one sample-table row, run the stages, and report.

    Bad data (:class:`~merkit.errors.DataError`, including a face not found) is reported as a failed
    :class:`ClipResult` naming the sample; any other exception propagates (it is a bug, not bad data).
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    info = SimpleNamespace(**row)
    result = ClipResult(info.sample_id, info.dataset, str(info.subject), str(info.sample), "aligned")
    folder = clip_dir(out, config, info.sample_id)
    clip: AlignedClip | None = None
    try:
        if is_cached(folder) and not overwrite and not is_fresh(folder, info.frames):
            shutil.rmtree(folder)  # made from another release's frames, or the frames changed since
        if is_cached(folder) and not overwrite:
            meta = json.loads((folder / "meta.json").read_text())
            result.status = "cached"
            result.n_frames, result.n_faces = len(meta["frame_files"]), meta["n_faces"]
            result.notes = list(meta.get("notes", []))
        else:
            clip = align_sample(info, config)
            save_aligned_clip(clip, folder)
            result.n_frames, result.n_faces, result.notes = len(clip.frames), clip.n_faces, list(clip.notes)
        for stage in stages:
            target = stage_dir(folder, stage)
            if (target / "DONE").is_file() and not overwrite:
                continue
            clip = clip if clip is not None else load_aligned_clip(folder)
            target.mkdir(parents=True, exist_ok=True)
            stage(clip, target)
            (target / "DONE").write_text(stage.config_hash())
            result.stages_run.append(stage.name)
    except DataError as error:
        result.status = "failed"
        result.error_kind = "face-not-found" if isinstance(error, FaceNotFoundError) else "data-error"
        result.message = str(error)
    result.seconds = time.perf_counter() - start
    result.cpu_seconds = time.process_time() - cpu_start
    return result


def _worker_init() -> None:
    # One process per core already: OpenCV's own thread pool would oversubscribe the CPU.
    cv2.setNumThreads(1)


@dataclass
class PreprocessReport:
    """The outcome of :func:`preprocess`: counts, failures and where the cache is."""

    cache_dir: Path
    config_hash: str
    results: list[ClipResult]
    seconds: float
    workers: int
    diagnostics: Diagnostics = field(default_factory=Diagnostics)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failures(self) -> pd.DataFrame:
        """One row per failed clip: sample_id, dataset, subject, sample, error_kind, message."""
        columns = ["sample_id", "dataset", "subject", "sample", "error_kind", "message"]
        rows = [{c: getattr(r, c) for c in columns} for r in self.results if r.status == "failed"]
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> dict[str, Any]:
        failures = self.failures
        return {
            "cache_dir": str(self.cache_dir), "config_hash": self.config_hash, "clips": len(self.results),
            "aligned": self.count("aligned"), "cached": self.count("cached"), "failed": self.count("failed"),
            "failed_by_kind": failures["error_kind"].value_counts().to_dict() if len(failures) else {},
            "frames_aligned": sum(r.n_frames for r in self.results if r.status == "aligned"),
            "seconds": round(self.seconds, 3), "workers": self.workers,
            "clip_cpu_seconds": round(sum(r.cpu_seconds for r in self.results), 3),
            "warnings": self.diagnostics.summary(),
        }


def preprocess(table: pd.DataFrame, out: str | Path, config: FaceConfig = FaceConfig(), workers: int = 1,
               stages: Sequence[ClipStage] = (), overwrite: bool = False,
               progress: Callable[[ClipResult], None] | None = None,
               diagnostics: Diagnostics | None = None) -> PreprocessReport:
    """Align every clip of a sample table into the cache under ``out``; resumable and parallel over clips.

    Args:
        table: a sample table (:mod:`merkit.datasets.table`) with frame paths.
        out: cache root; the clips go under ``out/face-<config hash>/``.
        config: the face configuration.
        workers: processes (``1`` runs in this process; more uses a ``ProcessPoolExecutor``).
        stages: later per-clip stages (see the module docstring).
        overwrite: recompute clips that are already cached.
        progress: called with each :class:`ClipResult` as it completes.
        diagnostics: warnings counted before this step (e.g. by the dataset loader), carried into the report.

    Returns:
        A :class:`PreprocessReport`; ``summary.json`` and ``failures.csv`` are also written into the cache folder.
        Clips that fail on bad data are listed there and counted; they do not stop the run.

    Raises:
        ValueError: ``workers < 1``.
        RuntimeError: an unexpected error (not bad data) in a clip; the message names the sample, and the clips
            finished before it stay cached.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    start = time.perf_counter()
    root = cache_dir(out, config)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(
        {"config_hash": config.config_hash(), "version": FACE_CACHE_VERSION, "face": config.to_dict()}, indent=1))
    rows = [row._asdict() for row in table.itertuples(index=False)]
    results: list[ClipResult] = []

    def collect(result: ClipResult) -> None:
        results.append(result)
        if progress is not None:
            progress(result)

    if workers == 1:
        for row in rows:
            try:
                collect(process_clip(row, config, out, stages, overwrite))
            except Exception as error:
                raise RuntimeError(f"face preprocessing crashed on sample {row['sample_id']}: {error}") from error
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=_worker_init) as pool:
            futures = {pool.submit(process_clip, row, config, out, stages, overwrite): row["sample_id"]
                       for row in rows}
            for future in as_completed(futures):
                try:
                    collect(future.result())
                except Exception as error:
                    pool.shutdown(cancel_futures=True)
                    raise RuntimeError(
                        f"face preprocessing crashed on sample {futures[future]}: {error}") from error
    order = {row["sample_id"]: i for i, row in enumerate(rows)}
    results.sort(key=lambda r: order[r.sample_id])
    report = PreprocessReport(root, config.config_hash(), results, time.perf_counter() - start, workers)
    if diagnostics is not None:
        report.diagnostics.extend(diagnostics)
    for r in results:
        where = Where(r.dataset, r.subject, r.sample)
        if r.status == "failed":
            report.diagnostics.warn(r.error_kind, r.message, where)
            continue
        if r.n_faces > 1:
            report.diagnostics.warn("several-faces", f"{r.n_faces} faces on the reference frame; used the largest",
                                    where)
        for note in r.notes:
            kind, _, message = note.partition(": ")
            report.diagnostics.warn(kind, message, where)
    (root / "summary.json").write_text(json.dumps(report.summary(), indent=1))
    report.failures.to_csv(root / "failures.csv", index=False)
    return report


def preprocess_dataset(name: str, root: str | Path, out: str | Path, config: FaceConfig = FaceConfig(),
                       workers: int = 1, stages: Sequence[ClipStage] = (), overwrite: bool = False,
                       progress: Callable[[ClipResult], None] | None = None, **load_kwargs: Any) -> PreprocessReport:
    """Load dataset ``name`` from ``root`` (:func:`merkit.datasets.registry.load_dataset`, which ``load_kwargs``
    go to, e.g. ``sheet=``) and :func:`preprocess` it; the loader's counted warnings join the report's."""
    from merkit.datasets.registry import load_dataset

    loader_diagnostics = Diagnostics()
    table = load_dataset(name, root, diagnostics=loader_diagnostics, **load_kwargs)
    return preprocess(table, out, config, workers, stages, overwrite, progress, loader_diagnostics)


def results_table(report: PreprocessReport) -> pd.DataFrame:
    """All clip results of a run as a table (one row per clip)."""
    return pd.DataFrame([asdict(r) for r in report.results])

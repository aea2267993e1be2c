"""Motion features as a cached, parallel stage of ``merkit preprocess`` (the face cache's :class:`ClipStage` seam).

:class:`MotionStage` runs on each aligned clip right after the face stage (:func:`merkit.face.cache.preprocess`),
in the clip's cache folder, under ``motion-<hash>/`` where the hash is :meth:`MotionConfig.config_hash`. Changing a
motion parameter therefore recomputes the motion features but not the alignment, and two configs never mix.
Files per clip::

    motion-<hash>/onset_apex_flow.npy    float32 (3, S, S)        u, v, strain
    motion-<hash>/apex_minus_onset.npy   float32 (C, S, S)
    motion-<hash>/long_term_flow.npy     float32 (F, 3, S, S)
    motion-<hash>/dynamic_image.npy      float32 (C, S, S)
    motion-<hash>/resample_clip.npy      float32 (T, S, S[, 3])
    motion-<hash>/onset.npy, apex.npy    float32 (C, S, S)        onset_apex_frames: the labelled crops
    motion-<hash>/onset_window.npy       float32 (2J+1, C, S, S)  onset_apex_frames: crops temporal jitter draws
    motion-<hash>/apex_window.npy        float32 (2J+1, C, S, S)    from (index J = the labelled frame)
    motion-<hash>/au_boxes.npy           float32 (9, 4)           AU boxes / crop side (reference landmarks)
    motion-<hash>/ss_onset.npy, ss_apex.npy  float32 (P, C, S, S) ss_pairs: FRL-DGT's self-supervised pairs
    motion-<hash>/motion.json            onset/apex/offset frame numbers used, where the apex came from
    motion-<hash>/DONE                   written last by the face cache

:func:`preprocess_motion` aligns and computes in one call (``workers`` processes);
:func:`load_motion_features` reads the cache back as a :class:`~merkit.features.FeatureSet`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merkit.errors import DataError, Diagnostics, Where
from merkit.motion.flow import FLOW_METHODS
from merkit.motion.representations import REPRESENTATIONS

# Bump when a change in merkit.motion changes the cached features for an unchanged MotionConfig.
MOTION_CACHE_VERSION = 1

#: The files each representation writes (``<stem>.npy``), each with the FeatureSet input key it is read into. Most
#: write one file named after themselves; ``flow`` is the standard key of onset->apex flow.
OUTPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "onset_apex_flow": (("onset_apex_flow", "flow"),),
    "apex_minus_onset": (("apex_minus_onset", "apex_minus_onset"),),
    "long_term_flow": (("long_term_flow", "long_term_flow"),),
    "dynamic_image": (("dynamic_image", "dynamic_image"),),
    "resample_clip": (("resample_clip", "clip"),),
    "onset_apex_frames": (("onset", "onset"), ("apex", "apex"), ("onset_window", "onset_window"),
                          ("apex_window", "apex_window")),
    "au_boxes": (("au_boxes", "au_boxes"),),
    "ss_pairs": (("ss_onset", "ss_onset"), ("ss_apex", "ss_apex")),
}

#: FeatureSet input key of each output file stem (:meth:`MotionStage.compute`'s keys): the representation's name
#: for the single-file representations (``onset_apex_flow`` -> ``flow``), ``onset``, ``apex_window``, ... otherwise.
INPUT_KEYS: dict[str, str] = {stem: key for outputs in OUTPUTS.values() for stem, key in outputs}

#: MotionConfig fields that matter to one representation only; they enter the cache hash only when it is requested,
#: so that adding them did not invalidate the caches of the other representations.
REPRESENTATION_FIELDS: dict[str, str] = {"jitter": "onset_apex_frames", "ss_pairs": "ss_pairs"}


def input_keys_of(representations: Sequence[str]) -> tuple[str, ...]:
    """The FeatureSet input keys that ``representations`` produce, in order (``onset_apex_frames`` gives four)."""
    return tuple(key for name in representations for _, key in OUTPUTS[name])


@dataclass(frozen=True)
class MotionConfig:
    """Which motion representations to compute per clip, and how; :meth:`config_hash` keys the cache.

    Attributes:
        representations: names from :data:`merkit.motion.representations.REPRESENTATIONS`.
        method: flow backend of ``onset_apex_flow`` (``tvl1``, ``farneback`` or ``dis``).
        flow_params: that backend's parameters.
        size: output side of every representation, pixels (28 for STSTNet; ``None`` keeps the crop's size).
        normalise: ``onset_apex_flow`` normalisation, ``minmax`` (per image, as the composite) or ``none``.
        long_term_frames: F of ``long_term_flow`` (SLSTT: 11).
        long_term_method: flow backend of ``long_term_flow`` (SLSTT: Farneback with its parameters).
        long_term_encoding: ``hsv`` (SLSTT) or ``raw``.
        resample_length: T of ``resample_clip`` (the clip from onset to offset).
        apex: ``annotated``, ``spot`` or ``annotated-or-spot`` (see :mod:`merkit.motion.export`).
        spot_measure: the apex spotting measure (:func:`merkit.motion.spotting.spot_apex`).
        jitter: J of ``onset_apex_frames``, frames on each side of the labelled onset and apex that temporal jitter
            may draw (MMNet: 2; :func:`merkit.motion.representations.jitter_windows`).
        ss_pairs: P of ``ss_pairs``, FRL-DGT's self-supervised frame pairs per clip.
    """

    representations: tuple[str, ...] = ("onset_apex_flow",)
    method: str = "tvl1"
    flow_params: dict[str, Any] = field(default_factory=dict)
    size: int | None = 28
    normalise: str = "minmax"
    long_term_frames: int = 11
    long_term_method: str = "farneback"
    long_term_encoding: str = "hsv"
    resample_length: int = 16
    apex: str = "annotated-or-spot"
    spot_measure: str = "flow"
    jitter: int = 2
    ss_pairs: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "representations", tuple(self.representations))
        unknown = [r for r in self.representations if r not in REPRESENTATIONS]
        if unknown or not self.representations:
            raise ValueError(f"representations must be drawn from {REPRESENTATIONS}, got {list(self.representations)}")
        for name in ("method", "long_term_method"):
            if getattr(self, name) not in FLOW_METHODS:
                raise ValueError(f"{name} must be one of {FLOW_METHODS}, got {getattr(self, name)!r}")
        if self.apex not in ("annotated", "spot", "annotated-or-spot"):
            raise ValueError(f"apex must be annotated, spot or annotated-or-spot, got {self.apex!r}")
        if self.jitter < 0 or self.ss_pairs < 1:
            raise ValueError(f"jitter must be >= 0 and ss_pairs >= 1, got {self.jitter} and {self.ss_pairs}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["representations"] = list(self.representations)
        return d

    def config_hash(self) -> str:
        """12 hex digits identifying the cached features: the config and :data:`MOTION_CACHE_VERSION`.

        ``jitter`` and ``ss_pairs`` count only when their representation is requested (``REPRESENTATION_FIELDS``).
        """
        fields = {k: v for k, v in self.to_dict().items()
                  if k not in REPRESENTATION_FIELDS or REPRESENTATION_FIELDS[k] in self.representations}
        payload = json.dumps({"version": MOTION_CACHE_VERSION, **fields}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


Annotations = dict[str, tuple[int | None, int | None, int | None]]


def annotations_of(table: pd.DataFrame) -> Annotations:
    """``sample_id -> (onset, apex, offset)`` frame numbers (``None`` where the table has none)."""
    def number(value: Any) -> int | None:
        return None if pd.isna(value) else int(value)

    return {row.sample_id: (number(row.onset), number(row.apex), number(row.offset))
            for row in table.itertuples(index=False)}


class MotionStage:
    """A :class:`merkit.face.cache.ClipStage` computing :class:`MotionConfig`'s representations of each clip.

    Args:
        config: the motion config.
        annotations: ``sample_id -> (onset, apex, offset)`` frame numbers (:func:`annotations_of`). A clip not
            listed, or lacking an annotation, falls back to: onset = the face stage's reference frame (the onset
            under its default), offset = the clip's last frame, apex spotted (unless ``apex="annotated"``).
    """

    name = "motion"

    def __init__(self, config: MotionConfig = MotionConfig(), annotations: Annotations | None = None):
        self.config = config
        self.annotations = dict(annotations or {})

    def config_hash(self) -> str:
        return self.config.config_hash()

    @staticmethod
    def _where(clip) -> Where:
        parts = clip.sample_id.split("/", 2)
        return Where(*parts) if len(parts) == 3 else Where(sample=clip.sample_id)

    def positions(self, clip) -> tuple[int, int, int, str]:
        """(onset, apex, offset) positions in ``clip.frames`` and the apex source (``annotated``/``spotted``).

        Raises:
            DataError: an annotated frame is not among the clip's frames, or the apex is missing and
                ``apex="annotated"``.
        """
        from merkit.motion.spotting import spot_apex

        numbers = list(clip.frame_numbers)
        onset_n, apex_n, offset_n = self.annotations.get(clip.sample_id, (None, None, None))
        where = self._where(clip)

        def position(number: int | None, default: int, what: str) -> int:
            if number is None:
                return default
            if number not in numbers:
                raise DataError(f"{what} frame {number} is not among the aligned clip's frames "
                                f"{numbers[0]}..{numbers[-1]}", where, hint="preprocess with span 'all' or "
                                "'onset-offset'")
            return numbers.index(number)

        onset = position(onset_n, clip.reference_index, "onset")
        offset = position(offset_n, len(numbers) - 1, "offset")
        spot = self.config.apex == "spot" or (self.config.apex == "annotated-or-spot" and apex_n is None)
        if spot:
            return onset, spot_apex(clip.frames, onset, offset, self.config.spot_measure).apex, offset, "spotted"
        if apex_n is None:
            raise DataError("the sample has no apex frame number", where,
                            hint="use apex='annotated-or-spot' to spot it")
        return onset, position(apex_n, onset, "apex"), offset, "annotated"

    def compute(self, clip) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The representations of one :class:`~merkit.face.clip.AlignedClip` and their provenance.

        Returns:
            ``(arrays, meta)``: arrays keyed by output file stem (:data:`OUTPUTS`; :data:`INPUT_KEYS` maps a stem
            to its FeatureSet key) and the ``motion.json`` record.
        """
        from merkit.motion import representations as rep

        c = self.config
        onset, apex, offset, source = self.positions(clip)
        frames = clip.frames
        out: dict[str, np.ndarray] = {}
        for name in c.representations:
            if name == "onset_apex_flow":
                out[name] = rep.onset_apex_flow(frames[onset], frames[apex], c.size, c.normalise, c.method,
                                                **c.flow_params)
            elif name == "apex_minus_onset":
                out[name] = rep.apex_minus_onset(frames[onset], frames[apex], c.size)
            elif name == "long_term_flow":
                out[name] = rep.long_term_flow(frames, apex, onset, offset, c.long_term_frames,
                                               c.long_term_encoding, c.size, c.long_term_method)
            elif name == "dynamic_image":
                out[name] = rep.dynamic_image(frames[onset:offset + 1], size=c.size)
            elif name == "onset_apex_frames":
                if apex < onset:
                    raise DataError(f"the apex (frame {clip.frame_numbers[apex]}) comes before the onset (frame "
                                    f"{clip.frame_numbers[onset]})", self._where(clip), hint="check the annotation")
                out.update(rep.onset_apex_frames(frames, onset, apex, c.jitter, c.size))
            elif name == "au_boxes":
                from merkit.face.regions import au_boxes

                # the reference frame's landmarks (the onset by default), also in per-frame mode
                out[name] = au_boxes(clip.landmarks, frames.shape[1])
            elif name == "ss_pairs":
                out["ss_onset"], out["ss_apex"] = rep.ss_pairs(frames, c.ss_pairs, clip.sample_id, c.size)
            else:
                clip_part = rep.resample_clip(frames[onset:offset + 1], c.resample_length)
                if c.size is not None:
                    clip_part = np.stack([rep._resize(f, c.size) for f in clip_part])
                out[name] = clip_part.astype(np.float32)
        numbers = list(clip.frame_numbers)
        meta = {"sample_id": clip.sample_id, "onset_frame": numbers[onset], "apex_frame": numbers[apex],
                "offset_frame": numbers[offset], "apex_source": source, "config_hash": self.config_hash()}
        return out, meta

    def __call__(self, clip, out_dir: Path) -> None:
        arrays, meta = self.compute(clip)
        out_dir = Path(out_dir)
        for name, array in arrays.items():
            np.save(out_dir / f"{name}.npy", array)
        (out_dir / "motion.json").write_text(json.dumps(meta, indent=1))


def preprocess_motion(table: pd.DataFrame, out: str | Path, motion: MotionConfig = MotionConfig(),
                      face=None, workers: int = 1, overwrite: bool = False, progress=None):
    """Align every clip (face stage) and compute its motion features into the cache under ``out``.

    Args:
        table: a raw sample table (frames, onset/apex/offset frame numbers).
        out: cache root (the face cache's ``OUT``).
        motion: the :class:`MotionConfig`.
        face: a :class:`merkit.face.clip.FaceConfig` (default: the face stage's default).
        workers: processes, parallel over clips.
        overwrite: recompute clips and features already cached.
        progress: called with each :class:`merkit.face.cache.ClipResult`.

    Returns:
        The face cache's :class:`~merkit.face.cache.PreprocessReport`; clips that fail on bad data are counted
        there and do not stop the run.
    """
    from merkit.face.cache import preprocess
    from merkit.face.clip import FaceConfig

    stage = MotionStage(motion, annotations_of(table))
    return preprocess(table, out, face or FaceConfig(), workers, [stage], overwrite, progress)


def preprocess_motion_dataset(name: str, root: str | Path, out: str | Path, motion: MotionConfig = MotionConfig(),
                              face=None, workers: int = 1, overwrite: bool = False, progress=None, **load_kwargs):
    """Load dataset ``name`` (:func:`merkit.datasets.registry.load_dataset`) and :func:`preprocess_motion` it.

    This is what ``merkit preprocess NAME --root PATH --out CACHE`` runs when motion features are requested.
    """
    from merkit.datasets.registry import load_dataset

    table = load_dataset(name, root, **load_kwargs)
    return preprocess_motion(table, out, motion, face, workers, overwrite, progress)


def load_motion_features(table: pd.DataFrame, out: str | Path, motion: MotionConfig = MotionConfig(),
                         face=None, scheme: str = "megc2019-3class", diagnostics: Diagnostics | None = None,
                         skip_missing: bool = False):
    """Read cached motion features back as a :class:`~merkit.features.FeatureSet`.

    Inputs are keyed by :data:`OUTPUTS` (``onset_apex_flow`` -> ``"flow"``, ``onset_apex_frames`` -> ``"onset"``,
    ``"apex"``, ``"onset_window"``, ``"apex_window"``, ...), rows follow the labelled table (the class scheme's
    dropped rows are counted in ``diagnostics``).

    Raises:
        DataError: a sample has no cached features (unless ``skip_missing``, which counts it), or its cached
            onset/apex differ from the table's (stale cache: rerun with ``overwrite``).
    """
    import torch

    from merkit.datasets.schemes import get_scheme
    from merkit.face.cache import clip_dir
    from merkit.face.clip import FaceConfig
    from merkit.features import FeatureSet

    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    cls = get_scheme(scheme)
    labelled = cls.apply(table, diagnostics)
    face = face or FaceConfig()
    annotations = annotations_of(labelled)
    keep: list[int] = []
    stems = [(stem, key) for name in motion.representations for stem, key in OUTPUTS[name]]
    arrays: dict[str, list[np.ndarray]] = {stem: [] for stem, _ in stems}
    for i, row in enumerate(labelled.itertuples(index=False)):
        where = Where(row.dataset, row.subject, row.sample)
        folder = clip_dir(out, face, row.sample_id) / f"{MotionStage.name}-{motion.config_hash()}"
        if not (folder / "DONE").is_file():
            if skip_missing:
                diagnostics.warn("motion-not-cached", f"no cached motion features in {folder}", where)
                continue
            raise DataError(f"no cached motion features in {folder}", where,
                            hint="run merkit.motion.stage.preprocess_motion (merkit preprocess) first")
        meta = json.loads((folder / "motion.json").read_text())
        onset, apex, _ = annotations[row.sample_id]
        if (onset is not None and meta["onset_frame"] != onset) or (
                apex is not None and meta["apex_source"] == "annotated" and meta["apex_frame"] != apex):
            raise DataError(f"cached features used onset {meta['onset_frame']} / apex {meta['apex_frame']}, the "
                            f"table says {onset} / {apex}", where, hint="stale cache: rerun with overwrite")
        for stem, _ in stems:
            arrays[stem].append(np.load(folder / f"{stem}.npy"))
        keep.append(i)
    if not keep:
        raise DataError("no sample has cached motion features", hint="run preprocess_motion first")
    inputs = {key: torch.from_numpy(np.stack(arrays[stem])) for stem, key in stems}
    notes = [f"motion features {list(motion.representations)} (config {motion.config_hash()})"
             + (f", onset_apex_flow by {motion.method}, normalise={motion.normalise}"
                if "onset_apex_flow" in motion.representations else "")]
    if "onset_apex_frames" in motion.representations:
        notes.append(f"onset/apex crops with windows of +-{motion.jitter} frames for temporal jitter (training only)")
    if "ss_pairs" in motion.representations:
        notes.append(f"{motion.ss_pairs} self-supervised frame pairs per clip, drawn once at preprocessing")
    meta = {"motion_config": motion.to_dict()}
    if "onset_apex_flow" in motion.representations:
        meta["flow_channels"] = ["u", "v", "strain"]
    return FeatureSet(labelled.iloc[keep].reset_index(drop=True), inputs, cls.classes, notes, meta)


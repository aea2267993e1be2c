"""The motion stage: which representations one aligned clip yields, and how (:class:`MotionConfig`).

:func:`motion_inputs` computes a clip's representations from its aligned frames and resolved onset, apex and
offset positions; the apex itself is chosen by the one apex rule, :func:`merkit.motion.spotting.choose_apex`. The
inputs stage (:mod:`merkit.inputs`) calls both for every clip, whether it comes from a dataset, a video or the demo.
Arrays per clip, keyed by output name (:data:`OUTPUTS` gives the model-input key of each):

=====================  ==========================  ===========================================================
output                 shape (float32 unless said) meaning
=====================  ==========================  ===========================================================
``onset_apex_flow``    (3, S, S)                   u, v, optical strain
``apex_minus_onset``   (C, S, S)                   apex - onset crops
``long_term_flow``     (F, 3, S, S)                flow from the onset to F frames around the apex
``dynamic_image``      (C, S, S)                   rank-pooled onset..offset
``resample_clip``      (T, S, S[, 3])              onset..offset resampled to T frames
``onset``, ``apex``    (C, S, S)                   onset_apex_frames: the labelled crops
``onset_window``       (2J+1, C, S, S)             onset_apex_frames: crops temporal jitter draws from
``apex_window``        (2J+1, C, S, S)             (index J is the labelled frame)
``jitter_bounds``      (4,) int64                  the window indices the jitter mode draws from
``au_boxes``           (9, 4)                      AU boxes / crop side, from the reference landmarks
``face_points``        (5, 2)                      HTNet's eye centres, nose tip, mouth corners / crop side
``ss_onset``           (P, C, S, S)                ss_pairs: FRL-DGT's self-supervised pairs
``ss_apex``            (P, C, S, S)
=====================  ==========================  ===========================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pydantic

from merkit.boundary import FIELDS, Count, NonNegativeInt, check_fields
from merkit.errors import ConfigError, DataError, Where
from merkit.motion.flow import FLOW_METHODS
from merkit.motion.representations import JITTER_MODES, REPRESENTATIONS
from merkit.motion.spotting import APEX_RULES, SPOTTING_MEASURES

#: The arrays each representation yields, each with the model-input key it is read into. Most yield one array
#: named after themselves; ``flow`` is the standard key of onset->apex flow.
OUTPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "onset_apex_flow": (("onset_apex_flow", "flow"),),
    "apex_minus_onset": (("apex_minus_onset", "apex_minus_onset"),),
    "long_term_flow": (("long_term_flow", "long_term_flow"),),
    "dynamic_image": (("dynamic_image", "dynamic_image"),),
    "resample_clip": (("resample_clip", "clip"),),
    "onset_apex_frames": (("onset", "onset"), ("apex", "apex"), ("onset_window", "onset_window"),
                          ("apex_window", "apex_window"), ("jitter_bounds", "jitter_bounds")),
    "au_boxes": (("au_boxes", "au_boxes"),),
    "face_points": (("face_points", "face_points"),),
    "ss_pairs": (("ss_onset", "ss_onset"), ("ss_apex", "ss_apex")),
}

#: Model-input key of each output name: the representation's name for the single-array representations
#: (``onset_apex_flow`` -> ``flow``), ``onset``, ``apex_window``, ... otherwise.
INPUT_KEYS: dict[str, str] = {name: key for outputs in OUTPUTS.values() for name, key in outputs}

#: Representations computed from the onset and apex frames alone; a clip whose representations are all of these
#: and whose apex is annotated needs no other frame decoded or aligned.
PAIR_REPRESENTATIONS: frozenset[str] = frozenset({"onset_apex_flow", "apex_minus_onset", "au_boxes",
                                                  "face_points"})


def input_keys_of(representations: Sequence[str]) -> tuple[str, ...]:
    """The model-input keys that ``representations`` produce, in order (``onset_apex_frames`` gives four)."""
    return tuple(key for name in representations for _, key in OUTPUTS[name])


@pydantic.with_config(FIELDS)
@dataclass(frozen=True)
class MotionConfig:
    """Which motion representations to compute per clip, and how: the motion half of the preprocessing record
    (:class:`merkit.inputs.Preprocessing`).

    The defaults are the MEGC2019 composite's images: TV-L1 from onset to apex (OpenCV's parameters), strain,
    28 px, each channel min-max stretched per image.

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
        apex: the apex rule, ``annotated-or-spot`` (default), ``annotated`` or ``spot``
            (:func:`merkit.motion.spotting.choose_apex`).
        spot_measure: the apex spotting measure (:func:`merkit.motion.spotting.spot_apex`).
        jitter: J of ``onset_apex_frames``, frames on each side of the labelled onset and apex that temporal jitter
            may draw (MMNet: 2; :func:`merkit.motion.representations.jitter_windows`).
        jitter_mode: which of those frames a training sample draws from
            (:func:`merkit.motion.representations.jitter_bounds`): ``symmetric`` (default; up to J frames either
            way, the MMNet report's "four frames around" with J = 2), ``inward`` (the onset later and the apex
            earlier by up to ``int(0.15 * (apex - onset) / 4)`` frames, the authors' ``CASME2_5.py``) or
            ``mmnet-3class`` (the authors' ``CASME2_3.py``). The code-derived modes cap their reach at J.
        ss_pairs: P of ``ss_pairs``, FRL-DGT's self-supervised frame pairs per clip.

    Raises:
        ConfigError (a ValueError): an unknown representation, flow method, apex rule, spotting measure or jitter
            mode, no representation, or a count out of range (:func:`merkit.boundary.check_fields`).
    """

    representations: tuple[Literal[REPRESENTATIONS], ...] = ("onset_apex_flow",)
    method: Literal[FLOW_METHODS] = "tvl1"
    flow_params: dict[str, Any] = field(default_factory=dict)
    size: Count | None = 28
    normalise: Literal["minmax", "none"] = "minmax"
    long_term_frames: Count = 11
    long_term_method: Literal[FLOW_METHODS] = "farneback"
    long_term_encoding: str = "hsv"
    resample_length: Count = 16
    apex: Literal[APEX_RULES] = "annotated-or-spot"
    spot_measure: Literal[SPOTTING_MEASURES] = "flow"
    jitter: NonNegativeInt = 2
    jitter_mode: Literal[JITTER_MODES] = "symmetric"
    ss_pairs: Count = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "representations", tuple(self.representations))
        check_fields(self)
        if not self.representations:
            raise ConfigError(f"MotionConfig.representations must list at least one of {REPRESENTATIONS}")

    @property
    def input_keys(self) -> tuple[str, ...]:
        """The model-input keys these representations produce."""
        return input_keys_of(self.representations)

    @property
    def needs_pair_only(self) -> bool:
        """Whether every representation reads only the onset and apex frames (the apex may still need spotting)."""
        return set(self.representations) <= PAIR_REPRESENTATIONS

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["representations"] = list(self.representations)
        return d


def motion_inputs(clip, config: MotionConfig, onset: int, apex: int, offset: int,
                  where: Where | None = None) -> dict[str, np.ndarray]:
    """The representations of one aligned clip, keyed by output name (see the module docstring).

    Args:
        clip: a :class:`merkit.face.clip.AlignedClip` (frames (T, S, S[, 3]) uint8).
        config: the motion config.
        onset, apex, offset: positions in ``clip.frames`` (0-based), with ``onset <= offset``.
        where: named in errors.

    Raises:
        DataError: ``onset_apex_frames`` with an apex before the onset.
    """
    from merkit.motion import representations as rep

    c, frames = config, clip.frames
    out: dict[str, np.ndarray] = {}
    for name in c.representations:
        if name == "onset_apex_flow":
            out[name] = rep.onset_apex_flow(frames[onset], frames[apex], c.size, c.normalise, c.method,
                                            **c.flow_params)
        elif name == "apex_minus_onset":
            out[name] = rep.apex_minus_onset(frames[onset], frames[apex], c.size)
        elif name == "long_term_flow":
            out[name] = rep.long_term_flow(frames, apex, onset, offset, c.long_term_frames, c.long_term_encoding,
                                           c.size, c.long_term_method)
        elif name == "dynamic_image":
            out[name] = rep.dynamic_image(frames[onset:offset + 1], size=c.size)
        elif name == "onset_apex_frames":
            if apex < onset:
                raise DataError(f"the apex (frame {clip.frame_numbers[apex]}) comes before the onset (frame "
                                f"{clip.frame_numbers[onset]})", where, hint="check the annotation")
            out.update(rep.onset_apex_frames(frames, onset, apex, c.jitter, c.size, c.jitter_mode, offset))
        elif name == "au_boxes":
            from merkit.face.regions import au_boxes

            # the reference frame's landmarks (the onset by default), also in per-frame mode
            out[name] = au_boxes(clip.landmarks, frames.shape[1])
        elif name == "face_points":
            from merkit.face.regions import face_points

            out[name] = face_points(clip.landmarks, frames.shape[1])
        elif name == "ss_pairs":
            out["ss_onset"], out["ss_apex"] = rep.ss_pairs(frames, c.ss_pairs, clip.sample_id, c.size)
        else:
            part = rep.resample_clip(frames[onset:offset + 1], c.resample_length)
            if c.size is not None:
                part = np.stack([rep._resize(f, c.size) for f in part])
            out[name] = part.astype(np.float32)
    return out

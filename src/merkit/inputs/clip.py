"""One clip to model inputs: the single per-clip function that every entry point calls.

``merkit evaluate`` and ``merkit train`` (through :func:`merkit.inputs.build.build_inputs`), ``merkit export-flow``
(:func:`merkit.inputs.composite.write_composite`), the demo and ``merkit predict`` all turn a clip into model
inputs with :func:`clip_inputs`, so a checkpoint's inputs are rebuilt at predict time by the code that made them in
training.

Per clip: the face is fitted once on the reference frame (the onset by default) and that one transform warps every
frame (:func:`merkit.face.clip.align_frames`); the apex is chosen by the one apex rule
(:func:`merkit.motion.spotting.choose_apex`); the motion stage computes the representations
(:func:`merkit.motion.stage.motion_inputs`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from merkit.errors import DataError, Where
from merkit.inputs.record import Preprocessing


@dataclass
class ClipInputs:
    """What :func:`clip_inputs` makes of one clip.

    Attributes:
        inputs: model-input key -> array without a batch dimension (:data:`merkit.motion.stage.OUTPUTS`),
            float32 except ``jitter_bounds`` (int64).
        onset, apex, offset: the frame numbers used.
        apex_source: ``annotated`` (annotated or given by the user) or ``spotted``.
        clip: the aligned face clip (:class:`merkit.face.clip.AlignedClip`); its frames are the ones decoded.
        notes: ``"kind: message"`` remarks for a report (several faces, reference fallback, ECC failures).
        seconds: wall time of the ``face`` stage (detection, landmarks, warping) and the ``motion`` stage (apex
            choice, representations).
    """

    inputs: dict[str, np.ndarray]
    onset: int
    apex: int
    offset: int
    apex_source: str
    clip: object
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def crop(self, number: int) -> np.ndarray:
        """The aligned crop of frame ``number``, (S, S) or (S, S, 3) uint8."""
        return self.clip.frames[list(self.clip.frame_numbers).index(number)]


def _at(where: Where | None, frame: int) -> Where:
    return dataclasses.replace(where or Where(), frame=frame)


def _position(numbers: Sequence[int], number: int | None, what: str, where: Where | None) -> int | None:
    if number is None:
        return None
    if number not in numbers:
        raise DataError(f"the {what} frame {number} is not among the clip's frames ({numbers[0]}..{numbers[-1]})",
                        where, hint="check the annotation, or the frames given")
    return list(numbers).index(number)


def _plan(frame_numbers: Sequence[int], record: Preprocessing, onset: int | None, apex: int | None,
          offset: int | None, where: Where | None, apex_rule: str | None) -> tuple[list[int], int, int]:
    """The frames :func:`clip_inputs` needs, so that only those are decoded and aligned, and the first and last
    position of the clip's span. Those are the span of ``record.face.span``, or just the reference, onset and apex
    frames when every representation reads only the onset and the apex and the apex is known.

    Raises:
        DataError: an annotated frame is not among ``frame_numbers``, or the span needs an annotation the clip lacks.
    """
    numbers = list(frame_numbers)
    if not numbers:
        raise DataError("the clip has no frames", where)
    onset_at, apex_at, offset_at = (_position(numbers, n, w, where)
                                    for n, w in ((onset, "onset"), (apex, "apex"), (offset, "offset")))
    face = record.face
    start, stop = 0, len(numbers) - 1
    if face.span != "all":
        end = offset_at if face.span == "onset-offset" else apex_at
        if onset_at is None or end is None:
            raise DataError(f"span {face.span!r} needs the onset and the {face.span.split('-')[1]} frame", where,
                            hint="use span 'all' or fix the annotation")
        start, stop = onset_at, end
    rule = apex_rule or record.motion.apex
    if record.motion.needs_pair_only and onset_at is not None and apex_at is not None and rule != "spot":
        reference = {"onset": onset_at, "apex": apex_at, "first": start}[face.reference]
        return sorted({reference, onset_at, apex_at}), start, stop
    return list(range(start, stop + 1)), start, stop


def clip_inputs(frames: Sequence[np.ndarray], frame_numbers: Sequence[int], record: Preprocessing,
                onset: int | None = None, apex: int | None = None, offset: int | None = None,
                where: Where | None = None, sample_id: str = "", frame_paths: Sequence[str] | None = None,
                apex_rule: str | None = None) -> ClipInputs:
    """The model inputs of one clip.

    Args:
        frames: the clip's frames in temporal order, (H, W, 3) RGB uint8 (as :mod:`merkit.media` reads them); a
            sequence that decodes on indexing (:class:`merkit.media.FrameFiles`) is read only where needed.
        frame_numbers: their frame numbers.
        record: the face and motion settings.
        onset, apex, offset: frame numbers, or ``None``: the onset then falls back to the first frame of the span
            (noted as ``reference-fallback`` when the face is fitted on it), the offset to the last (also when the
            span ends before it), and the apex follows the apex rule.
        where: named in every error and note.
        sample_id: the sample's id (FRL-DGT's self-supervised pairs are drawn from it).
        frame_paths: the source files, kept in the aligned clip.
        apex_rule: overrides ``record.motion.apex`` (``merkit predict`` passes ``annotated-or-spot``: a user's video
            has no annotation, and a given apex counts as annotated).

    Returns:
        :class:`ClipInputs`.

    Raises:
        DataError: no frames, frames of different sizes, an annotated frame not among ``frame_numbers``, an offset
            before the onset, a missing apex under the ``annotated`` rule; :class:`merkit.face.FaceNotFoundError`
            when the reference frame shows no face, and its subclass :class:`merkit.face.landmarks.FaceLostError`
            when another frame the motion uses shows none where the reference frame's was, or one that moved more
            than :data:`merkit.face.landmarks.MAX_FACE_SHIFT` of its width. Messages name ``where`` and the frame.
    """
    from merkit.face.clip import align_frames
    from merkit.face.landmarks import check_face
    from merkit.motion.spotting import choose_apex
    from merkit.motion.stage import INPUT_KEYS, motion_inputs

    given = [int(n) for n in frame_numbers]
    keep, start, stop = _plan(given, record, onset, apex, offset, where, apex_rule)
    onset_n = onset if onset is not None else given[start]
    # The clip ends at the offset, or at the span's end when the span stops earlier (span onset-apex).
    offset_n = offset if offset is not None and given.index(offset) <= stop else given[stop]
    if offset_n < onset_n:
        raise DataError(f"the offset ({offset_n}) comes before the onset ({onset_n})", where)
    numbers = [given[i] for i in keep]
    paths = [str(frame_paths[i]) for i in keep] if frame_paths is not None else None
    first = numbers.index(onset_n)
    # The offset is not decoded when the representations read only the onset and the apex.
    last = numbers.index(offset_n) if offset_n in numbers else len(numbers) - 1
    apex_at = numbers.index(apex) if apex is not None else None
    notes = []
    reference = {"onset": first if onset is not None else None, "apex": apex_at, "first": 0}[record.face.reference]
    if reference is None:
        notes.append(f"reference-fallback: no usable {record.face.reference} frame, fitted on the first kept frame")
        reference = 0
    start_time = time.perf_counter()
    decoded = [frames[i] for i in keep]
    clip = align_frames(decoded, record.face, reference, where, sample_id=sample_id, frame_paths=paths,
                        frame_numbers=numbers)
    if record.face.mode == "clip":
        # One transform serves every frame only while the face stays where it was on the reference frame.
        for i, frame in enumerate(decoded):
            if i != reference:
                check_face(frame, clip.face_box, record.face.detector, _at(where, numbers[i]))
    aligned = time.perf_counter()
    if clip.n_faces > 1:
        notes.append(f"several-faces: {clip.n_faces} faces on the reference frame; the largest {clip.face_box} is "
                     "used")
    notes.extend(clip.notes)
    motion = record.motion
    apex_at, source = choose_apex(clip.frames, first, last, apex_at, apex_rule or motion.apex, motion.spot_measure,
                                  where)
    arrays = motion_inputs(clip, motion, first, apex_at, last, where)
    seconds = {"face": aligned - start_time, "motion": time.perf_counter() - aligned}
    return ClipInputs({INPUT_KEYS[k]: v for k, v in arrays.items()}, onset_n, numbers[apex_at], offset_n, source,
                      clip, notes, seconds)

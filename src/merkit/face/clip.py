"""The clip protocol: fit the face once, on a reference frame, and apply that one transform to every frame.

Micro-movements are one or two pixels. Re-detecting and re-aligning each frame makes the face box and landmarks
jitter by about as much, which optical flow then reports as motion. Micro-expression work therefore detects the
face and fits its landmarks on the onset frame (or another chosen reference frame) and warps every frame of the
clip with that single transform. merkit does the same by default (``mode="clip"``). ``mode="per-frame"`` re-fits
every frame: it follows large head movements, at the price of that jitter, and is never the default.

The entry points are :func:`fit_face` (one image -> transform and aligned landmarks), :func:`align_image` and
:func:`align_frames` (frames in, an :class:`AlignedClip` out). Which frames a sample contributes, and caching, are
the inputs stage's business (:mod:`merkit.inputs`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

import cv2
import numpy as np
import pydantic
from pydantic import Field

from merkit.boundary import FIELDS, Bool, Int, NonNegativeFloat, NonNegativeInt, check_fields
from merkit.errors import ConfigError, DataError, Where
from merkit.face.align import (ALIGNMENTS, SIMILARITY_POINTS, TEMPLATE_68, FaceTransform, apply_matrix,
                               piecewise_affine, similarity_to_template)
from merkit.face.crop import CROPS, crop_box, crop_matrix
from merkit.face.landmarks import detect_landmarks

REFERENCES = ("onset", "apex", "first")
SPANS = ("all", "onset-offset", "onset-apex")
MODES = ("clip", "per-frame")
COLORS = ("rgb", "grey")
STABILISERS = ("none", "ecc")
DETECTORS = ("hog", "cnn")


@pydantic.with_config(FIELDS)
@dataclass(frozen=True)
class FaceConfig:
    """Everything that decides the aligned output: the face half of the preprocessing record
    (:class:`merkit.inputs.Preprocessing`).

    The defaults are the MEGC2019 composite's kind of crop: a 224 px grey similarity-aligned face, fitted once per
    clip on the onset frame, cropped to the landmarks' square box with no margin. Of merkit's crops, that one frames
    faces most like the composite's released apex crops, and on the one composite sample whose frames were at hand
    its exported flow matched the released image best (``docs/predict.md``, ``docs/scripts/crop_match.py``). It is
    the crop of the packaged model's record, and so of ``merkit export-flow`` and ``merkit show-face`` by default.

    Attributes:
        detector: dlib detector, ``hog`` (default, frontal) or ``cnn`` (mmod).
        upsample: times dlib upsamples the frame before detecting (finds smaller faces; slower).
        align: ``similarity`` (default) or ``piecewise-affine`` (see :mod:`merkit.face.align`).
        similarity_points: ``eyes`` or ``eyes-nose-mouth``.
        crop: ``landmarks`` (default), ``slstt`` (SLSTT's crop, the default until the composite's crop was
            measured; the SLSTT, FRL-DGT and synthetic configs name it) or ``eyes`` (see :mod:`merkit.face.crop`).
        margin: ``landmarks`` crop margin, a fraction of the box side on each side (default 0; the other crops
            ignore it).
        size: output side in pixels (square).
        color: ``grey`` (H, W; default) or ``rgb`` (H, W, 3) output frames. Frames are always decoded and warped
            in RGB and converted after warping.
        reference: frame the face is fitted on: ``onset`` (default), ``apex`` or ``first``. A sample without that
            annotation falls back to its first frame.
        span: frames kept: ``all`` the sample's frames, ``onset-offset`` or ``onset-apex`` (inclusive).
        mode: ``clip`` (one transform for the clip, default) or ``per-frame`` (re-fit every frame).
        stabilise: ``none`` (default) or ``ecc``: in ``clip`` mode, register every frame's crop to the reference
            frame's crop with a rigid (Euclidean) ECC fit and fold that correction into the frame's warp, which
            removes the residual head translation and in-plane rotation that one clip-level transform leaves (see
            :func:`stabilise_frames`).
        freeze_eyes: in ``clip`` mode, give every frame the reference frame's pixels inside the two eye regions
            (feathered), so that blinks (AU45) and gaze shifts leave no motion for the later stages (see
            :func:`eye_mask` and :func:`blend_to_reference`). Off by default.

    Raises:
        ConfigError (a ValueError): a value outside its choices or range (:func:`merkit.boundary.check_fields`),
            or ``stabilise``/``freeze_eyes`` without ``mode="clip"``.
    """

    detector: Literal[DETECTORS] = "hog"
    upsample: NonNegativeInt = 1
    align: Literal[ALIGNMENTS] = "similarity"
    similarity_points: Literal[SIMILARITY_POINTS] = "eyes"
    crop: Literal[CROPS] = "landmarks"
    margin: NonNegativeFloat = 0.0
    size: Annotated[Int, Field(ge=8)] = 224
    color: Literal[COLORS] = "grey"
    reference: Literal[REFERENCES] = "onset"
    span: Literal[SPANS] = "all"
    mode: Literal[MODES] = "clip"
    stabilise: Literal[STABILISERS] = "none"
    freeze_eyes: Bool = False

    def __post_init__(self) -> None:
        check_fields(self)
        if (self.stabilise != "none" or self.freeze_eyes) and self.mode != "clip":
            raise ConfigError(f"FaceConfig.stabilise and freeze_eyes need mode='clip', got {self.mode!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class AlignedClip:
    """One sample's aligned face clip: what the face stage hands to later stages (motion, models).

    Attributes:
        sample_id: ``dataset/subject/sample``.
        frames: (T, S, S, 3) RGB or (T, S, S) grey uint8 aligned crops, S = ``FaceConfig.size``.
        frame_paths: the T source frame paths ("" for frames given as arrays).
        frame_numbers: the T frame numbers (parsed from the file names, or 0..T-1).
        reference_index: index into ``frames`` of the reference frame the face was fitted on.
        landmarks: (68, 2) float32 landmarks of the reference frame in output pixels. In ``per-frame`` mode,
            ``frame_landmarks`` holds each frame's.
        source_landmarks: (68, 2) float32 landmarks of the reference frame in source pixels.
        face_box: (left, top, right, bottom) of the detected face in the reference frame, source pixels.
        n_faces: faces found on the reference frame (the largest is used).
        transforms: one :class:`FaceTransform` in ``clip`` mode; one per frame in ``per-frame`` mode.
        frame_landmarks: (T, 68, 2) float32 per-frame landmarks in output pixels (``per-frame`` mode only).
        stabilisation: (T, 2, 3) float64 rigid maps from reference-crop pixels to each frame's unstabilised crop
            pixels (identity for the reference frame), as estimated by :func:`stabilise_frames`; ``None`` when
            ``FaceConfig.stabilise`` is ``none``.
        notes: ``"kind: message"`` remarks for the run's report (e.g. ``reference-fallback``).
    """

    sample_id: str
    frames: np.ndarray
    frame_paths: list[str]
    frame_numbers: list[int]
    reference_index: int
    landmarks: np.ndarray
    source_landmarks: np.ndarray
    face_box: tuple[int, int, int, int]
    n_faces: int
    transforms: list[FaceTransform]
    frame_landmarks: np.ndarray | None = field(default=None)
    stabilisation: np.ndarray | None = field(default=None)
    notes: list[str] = field(default_factory=list)

    @property
    def transform(self) -> FaceTransform:
        """The clip-level transform (the reference frame's in ``per-frame`` mode)."""
        return self.transforms[0] if len(self.transforms) == 1 else self.transforms[self.reference_index]


def fit_face(landmarks: np.ndarray, config: FaceConfig = FaceConfig()) -> tuple[FaceTransform, np.ndarray]:
    """The transform from a source frame to the aligned crop, and the landmarks in the crop.

    Alignment (to :data:`~merkit.face.align.TEMPLATE_68`) and crop are composed into one mapping.

    Args:
        landmarks: (68, 2) source landmarks, pixels.

    Returns:
        ``(transform, aligned_landmarks)``: the :class:`FaceTransform` and (68, 2) float64 output pixels.
    """
    to_template = similarity_to_template(landmarks, config.similarity_points)
    in_template = apply_matrix(to_template, landmarks)
    if config.align == "similarity":
        box = crop_box(in_template, config.crop, config.margin)
        matrix = crop_matrix(box, config.size) @ to_template
        return FaceTransform("similarity", matrix, config.size), apply_matrix(matrix, landmarks)
    # Piecewise-affine: the face takes the template's shape, so the crop is computed on the template itself.
    place = crop_matrix(crop_box(TEMPLATE_68, config.crop, config.margin), config.size)
    output_landmarks = apply_matrix(place, TEMPLATE_68)
    transform = piecewise_affine(landmarks, output_landmarks, place @ to_template, config.size)
    return transform, output_landmarks


def _colour(image: np.ndarray, color: str) -> np.ndarray:
    if color == "grey" and image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if color == "rgb" and image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return image


def align_image(image: np.ndarray, config: FaceConfig = FaceConfig(), where: Where | None = None,
                ) -> tuple[np.ndarray, np.ndarray, FaceTransform]:
    """Detect the largest face of one image, align and crop it.

    Args:
        image: (H, W, 3) RGB or (H, W) grey uint8.

    Returns:
        ``(aligned, landmarks, transform)``: the (S, S[, 3]) uint8 crop, its (68, 2) landmarks in output pixels and
        the transform.

    Raises:
        FaceNotFoundError: no face; the message names ``where``.
    """
    landmarks, _, _ = detect_landmarks(image, config.detector, where, config.upsample)
    transform, aligned = fit_face(landmarks, config)
    return _colour(transform.warp(image), config.color), aligned, transform


#: ECC stops after this many iterations or once the update is below this many pixels.
ECC_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-4)
#: A stabilising shift or turn larger than these is not residual head drift; the frame is left as it was.
MAX_STABILISE_SHIFT = 0.1  # fraction of the crop side
MAX_STABILISE_DEGREES = 10.0


def stabilise_frames(crops: Sequence[np.ndarray], reference_index: int, frame_numbers: Sequence[int] | None = None,
                     ) -> tuple[np.ndarray, list[str]]:
    """Rigid maps that register each aligned crop to the reference crop, by ECC (Evangelidis & Psarakis, 2008).

    One clip-level transform (the default ``clip`` protocol) leaves the head's own drift in the later frames, and a
    frame difference such as apex - onset reports it as motion of the whole face. Optical strain cancels a rigid
    motion, a difference image does not. This fits ``cv2.findTransformECC`` with ``MOTION_EUCLIDEAN``
    (translation and in-plane rotation; no scale, no shear, so that no facial deformation is absorbed) on
    Gaussian-smoothed grey crops. The expression is local, so the whole-crop fit follows the head.

    Args:
        crops: T aligned crops, (S, S) grey or (S, S, 3) RGB uint8.
        reference_index: the crop the others are registered to.
        frame_numbers: for the notes (defaults to 0..T-1); the face stage adds the dataset, subject and sample when
            it counts them in the run's report.

    Returns:
        ``(maps, notes)``: (T, 2, 3) float64 maps from reference-crop pixels to frame-crop pixels (sample frame t
        at ``maps[t] @ (x, y, 1)`` to stabilise it; identity for the reference) and ``"stabilise-failed: ..."``
        notes for frames whose fit did not converge or moved more than :data:`MAX_STABILISE_SHIFT` of the side or
        :data:`MAX_STABILISE_DEGREES`; those frames keep the identity.
    """
    numbers = list(frame_numbers) if frame_numbers is not None else list(range(len(crops)))
    grey = [(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) if c.ndim == 3 else c).astype(np.float32) for c in crops]
    side = grey[0].shape[0]
    maps = np.tile(np.eye(2, 3), (len(grey), 1, 1))
    notes = []
    for t, image in enumerate(grey):
        if t == reference_index:
            continue
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            _, warp = cv2.findTransformECC(grey[reference_index], image, warp, cv2.MOTION_EUCLIDEAN, ECC_CRITERIA,
                                           None, 5)
        except cv2.error as error:
            reason = str(error).strip().splitlines()[-1][:120]
            notes.append(f"stabilise-failed: frame {numbers[t]}: ECC did not converge ({reason}); frame left "
                         "unstabilised")
            continue
        shift = float(np.hypot(warp[0, 2], warp[1, 2]))
        degrees = float(np.degrees(np.arctan2(warp[1, 0], warp[0, 0])))
        if shift > MAX_STABILISE_SHIFT * side or abs(degrees) > MAX_STABILISE_DEGREES:
            notes.append(f"stabilise-failed: frame {numbers[t]}: ECC moved {shift:.1f} px and "
                         f"{degrees:.1f} degrees, beyond residual head drift; frame left unstabilised")
            continue
        maps[t] = warp
    return maps, notes


def _stabilised_transform(transform: FaceTransform, stabilisation: np.ndarray) -> FaceTransform:
    """``transform`` followed by the rigid correction: one interpolation of the source frame, not two."""
    if transform.kind == "similarity":
        # crop = M source; the stabilised crop at x samples the crop at W x, so its source -> output map is W^-1 M.
        correction = np.vstack([stabilisation, [0.0, 0.0, 1.0]])
        return FaceTransform("similarity", np.linalg.inv(correction) @ transform.matrix, transform.size)
    map_x, map_y = transform._remap_tables()
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    shape = (transform.size, transform.size)
    maps = tuple(cv2.warpAffine(m, stabilisation, shape, flags=flags, borderMode=cv2.BORDER_REPLICATE)
                 for m in (map_x, map_y))
    return dataclasses.replace(transform, _maps=maps)


#: Eye regions for ``freeze_eyes``: each eye's landmark hull grown by this fraction of the eye's width (corner to
#: corner), then feathered with a Gaussian of this fraction. A blink moves the lids by up to the eye's opening,
#: and the skin just above the upper lid with them.
EYE_GROW = 0.3
EYE_FEATHER = 0.1


def eye_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32 weight in [0, 1]: 1 over both eyes and their lids, 0 away from them.

    Each eye's hull (iBUG landmarks 36-41 and 42-47) is dilated by :data:`EYE_GROW` of the eye's width and feathered
    by :data:`EYE_FEATHER` of it, so that a frame blended with the reference through the mask has no seam. The
    brows (landmarks 17-26, about 0.75 eye widths above the eye's centre) stay outside: their weight is below
    0.05 on a frontal face (a test pins it), so AU1, AU2 and AU4 keep their motion.

    Args:
        landmarks: (68, 2) landmarks in output pixels.
    """
    mask = np.zeros((size, size), np.uint8)
    widths = []
    for eye in (slice(36, 42), slice(42, 48)):
        points = np.asarray(landmarks[eye], np.float64)
        width = float(np.linalg.norm(points[3] - points[0]))
        widths.append(width)
        hull = cv2.convexHull(np.round(points).astype(np.int32))
        grow = max(1, int(round(EYE_GROW * width)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        eye_only = np.zeros_like(mask)
        cv2.fillConvexPoly(eye_only, hull, 1)
        mask |= cv2.dilate(eye_only, kernel)
    sigma = max(0.5, EYE_FEATHER * float(np.mean(widths)))
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma), 0.0, 1.0)


def blend_to_reference(frames: np.ndarray, reference_index: int, mask: np.ndarray) -> np.ndarray:
    """Every frame blended towards the reference frame through ``mask`` (1 = the reference's pixel).

    Args:
        frames: (T, S, S) or (T, S, S, 3) uint8.
        mask: (S, S) float32 in [0, 1], e.g. :func:`eye_mask`.

    Returns:
        (T, S, S[, 3]) uint8; the reference frame is returned unchanged.
    """
    weight = mask if frames.ndim == 3 else mask[..., None]
    reference = frames[reference_index].astype(np.float32)
    blended = frames.astype(np.float32) * (1.0 - weight) + reference * weight
    out = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    out[reference_index] = frames[reference_index]
    return out


def align_frames(frames: Sequence[np.ndarray], config: FaceConfig = FaceConfig(), reference_index: int = 0,
                 where: Where | None = None, sample_id: str = "", frame_paths: Sequence[str] | None = None,
                 frame_numbers: Sequence[int] | None = None,
                 reference_fit: tuple[np.ndarray, tuple[int, int, int, int], int] | None = None) -> AlignedClip:
    """Align a clip given as arrays: fit on ``frames[reference_index]``, warp every frame with that transform.

    Args:
        frames: T frames, (H, W, 3) RGB or (H, W) grey uint8, all the same size.
        reference_index: the frame the face is fitted on (the onset, usually).
        reference_fit: ``(landmarks, box, n_faces)`` of the reference frame, as :func:`detect_landmarks` returns
            them, when the caller has found the face already (spotting follows it from window to window); the
            reference frame is then not searched again.

    Raises:
        FaceNotFoundError: no face on the reference frame (or, in ``per-frame`` mode, on any frame); the message
            names ``where`` and the frame.
        DataError: frames of different sizes.
    """
    where = where or Where()
    numbers = list(frame_numbers) if frame_numbers is not None else list(range(len(frames)))
    paths = list(frame_paths) if frame_paths is not None else [""] * len(frames)
    if not frames:
        raise DataError("the clip has no frames", where)
    shapes = {f.shape[:2] for f in frames}
    if len(shapes) > 1:
        raise DataError(f"the clip's frames differ in size: {sorted(shapes)}", where)

    def fit(index: int):
        frame_where = dataclasses.replace(where, frame=Path(paths[index]).name or numbers[index])
        return detect_landmarks(frames[index], config.detector, frame_where, config.upsample)

    landmarks, box, n_faces = fit(reference_index) if reference_fit is None else reference_fit
    transform, aligned_landmarks = fit_face(landmarks, config)
    stabilisation, notes = None, []
    if config.mode == "clip":
        transforms = [transform]
        warped = [transform.warp(f) for f in frames]
        frame_landmarks = None
        if config.stabilise == "ecc":
            stabilisation, notes = stabilise_frames(warped, reference_index, numbers)
            warped = [_stabilised_transform(transform, m).warp(f) if i != reference_index else w
                      for i, (m, f, w) in enumerate(zip(stabilisation, frames, warped))]
        if config.freeze_eyes:
            mask = eye_mask(aligned_landmarks, config.size)
            warped = list(blend_to_reference(np.stack(warped), reference_index, mask))
    else:
        fits = [fit_face(fit(i)[0], config) if i != reference_index else (transform, aligned_landmarks)
                for i in range(len(frames))]
        transforms = [t for t, _ in fits]
        warped = [t.warp(f) for t, f in zip(transforms, frames)]
        frame_landmarks = np.stack([lm for _, lm in fits]).astype(np.float32)
    return AlignedClip(
        sample_id=sample_id,
        frames=np.stack([_colour(w, config.color) for w in warped]),
        frame_paths=[str(p) for p in paths],
        frame_numbers=numbers,
        reference_index=int(reference_index),
        landmarks=aligned_landmarks.astype(np.float32),
        source_landmarks=landmarks.astype(np.float32),
        face_box=tuple(int(v) for v in box),
        n_faces=int(n_faces),
        transforms=transforms,
        frame_landmarks=frame_landmarks,
        stabilisation=stabilisation,
        notes=notes,
    )

"""From raw clips to model inputs: sample table -> face crop -> onset->apex flow -> :class:`FeatureSet`.

This is the raw-frame path of the pipeline (``STYLE.md`` section 1), used by ``merkit demo`` on synthetic clips
and usable with any raw dataset loader that fills the sample table's ``frames`` column. Per clip:

1. read the onset and apex frames named by the ``onset`` and ``apex`` frame numbers
   (:func:`merkit.datasets.frames.frame_at`);
2. align the pair with the face stage (:func:`merkit.face.clip.align_frames`, configured by a
   :class:`~merkit.face.clip.FaceConfig`): the face and its 68 landmarks are found on the **onset** frame and the
   onset and apex frames are warped with that one transform, so that only facial motion, not a re-fitted crop,
   separates them;
3. compute TV-L1 flow and optical strain from onset to apex and resize them to ``size``
   (:func:`merkit.motion.representations.onset_apex_flow`), as STSTNet's released inputs were made.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import pandas as pd
import torch

from merkit.datasets.frames import frame_at
from merkit.datasets.schemes import ClassScheme, get_scheme
from merkit.errors import DataError, Diagnostics, Where
from merkit.face.clip import FaceConfig
from merkit.features import FeatureSet
from merkit.preprocessing import Preprocessing

FLOW_CHANNELS = ["u", "v", "strain"]
# Grey 128 px similarity-aligned crop (merkit.face's default SLSTT-style box), fitted on the onset frame.
DEFAULT_FACE = FaceConfig(size=128, color="grey")


def read_grey(path: str, where: Where) -> np.ndarray:
    """One frame as (H, W) uint8 grey.

    Raises:
        DataError: the file is missing or cannot be decoded; the message names ``where``.
    """
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise DataError(f"cannot read frame {path}", where, hint="check that the file exists and is an image")
    return img


def onset_apex_paths(row) -> tuple[str, str]:
    """The onset and apex frame paths of a sample-table row, found by frame number in ``row.frames``.

    Raises:
        DataError: the row has no frames, no onset/apex number, or no frame with that number.
    """
    where = Where(row.dataset, row.subject, row.sample)
    if not len(row.frames):
        raise DataError("the sample has no frames", where, hint="load a raw release (frames column) first")
    out = []
    for name in ("onset", "apex"):
        number = getattr(row, name)
        if pd.isna(number):
            raise DataError(f"the sample has no {name} frame number", where)
        out.append(str(frame_at(row.frames, int(number), where)))
    return out[0], out[1]


def clip_flow(onset: np.ndarray, apex: np.ndarray, size: int = 28, face: FaceConfig = DEFAULT_FACE,
              where: Where | None = None, diagnostics: Diagnostics | None = None, **flow_params) -> np.ndarray:
    """u, v and optical strain of one clip from its onset and apex frames, face-cropped once on the onset.

    Args:
        onset, apex: (H, W) grey or (H, W, 3) RGB uint8 frames of one clip.
        size: side of the output maps, pixels (28 for STSTNet).
        face: detector, alignment and crop; ``face.size`` is the side of the crop on which TV-L1 runs.
        where: location named in errors and warnings.
        diagnostics: receives a counted warning when the onset frame shows several faces.
        flow_params: ``cv2.optflow.DualTVL1OpticalFlow_create`` arguments.

    Returns:
        float32 (3, size, size), channels u, v, strain, each min-max stretched to [0, 1].

    Raises:
        FaceNotFoundError: no face on the onset frame.
    """
    from merkit.face.clip import align_frames
    from merkit.motion.representations import onset_apex_flow

    clip = align_frames([onset, apex], face, 0, where)
    if clip.n_faces > 1 and diagnostics is not None:
        diagnostics.warn("several-faces", f"{clip.n_faces} faces on the onset frame; the largest is used", where)
    return onset_apex_flow(clip.frames[0], clip.frames[1], size=size, **flow_params)


def build_flow_features(
    table: pd.DataFrame,
    scheme: str | ClassScheme = "megc2019-3class",
    size: int = 28,
    face: FaceConfig = DEFAULT_FACE,
    diagnostics: Diagnostics | None = None,
    skip_faceless: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **flow_params,
) -> FeatureSet:
    """Onset->apex flow images of every sample of a raw sample table, as a :class:`FeatureSet`.

    Args:
        table: sample table with ``frames`` (sorted frame paths) and ``onset``/``apex`` frame numbers.
        scheme: class scheme (name or object) that labels the rows; rows it drops are counted in ``diagnostics``.
        size: side of the flow images (28 for STSTNet).
        face: face detection, alignment and crop (``face.size`` = crop side for TV-L1, pixels).
        diagnostics: collects counted warnings (several faces, skipped samples, rows the scheme drops).
        skip_faceless: skip (and count) samples whose onset frame has no detectable face instead of raising.
        progress: called with ``(done, total)`` after each sample.
        flow_params: ``cv2.optflow.DualTVL1OpticalFlow_create`` arguments (default: OpenCV's).

    Returns:
        FeatureSet with input ``"flow"``: float32 (N, 3, size, size), channels u, v, optical strain, each in
        [0, 1]; ``meta["flow_channels"] == ["u", "v", "strain"]``; ``meta["diagnostics"]`` the warning counts;
        ``meta["preprocessing"]`` the :class:`~merkit.preprocessing.Preprocessing` record (checkpoints keep it).

    Raises:
        DataError: a frame is missing or unreadable, or an onset/apex frame number is not among the frames;
        FaceNotFoundError: no face on an onset frame (unless ``skip_faceless``). Messages name the sample.
    """
    from merkit.face.landmarks import FaceNotFoundError

    scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    labelled = scheme.apply(table, diagnostics)
    images, keep = [], []
    for i, row in enumerate(labelled.itertuples(index=False)):
        onset_path, apex_path = onset_apex_paths(row)
        at_onset = Where(row.dataset, row.subject, row.sample, int(row.onset))
        onset = read_grey(onset_path, at_onset)
        apex = read_grey(apex_path, Where(row.dataset, row.subject, row.sample, int(row.apex)))
        try:
            images.append(clip_flow(onset, apex, size, face, at_onset, diagnostics, **flow_params))
            keep.append(i)
        except FaceNotFoundError as err:
            if not skip_faceless:
                raise
            diagnostics.warn("face-not-found", str(err), at_onset)
        if progress is not None:
            progress(i + 1, len(labelled))
    if not keep:
        raise DataError("no sample left to build features from", hint="check the class scheme and the frames")
    notes = [f"onset->apex TV-L1 flow and optical strain on a {face.size} px {face.align} / {face.crop} face crop "
             f"fitted on the onset frame, resized to {size}x{size}, min-max stretched per image"]
    record = Preprocessing.onset_apex_flow(face, size, **flow_params).to_dict()
    return FeatureSet(labelled.iloc[keep].reset_index(drop=True), {"flow": torch.from_numpy(np.stack(images))},
                      scheme.classes, notes, {"flow_channels": list(FLOW_CHANNELS),
                                              "diagnostics": diagnostics.summary(), "preprocessing": record})

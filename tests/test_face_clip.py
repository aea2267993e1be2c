"""The clip protocol on real video: one transform fitted on the reference frame, applied to every frame."""

from __future__ import annotations

import cv2
import numpy as np

from merkit.face.align import eye_centres
from merkit.face.clip import FaceConfig, align_frames

BACKGROUND = (200.0, 200.0)  # a point on the static wooden wall, left of the woman


def _patch_shift(a: np.ndarray, b: np.ndarray, centre: np.ndarray, half: int = 24) -> float:
    """Translation (pixels) between two grey images around ``centre``, by phase correlation."""
    x, y = np.round(centre).astype(int)
    pa = np.float32(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)[y - half:y + half, x - half:x + half])
    pb = np.float32(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)[y - half:y + half, x - half:x + half])
    (dx, dy), _ = cv2.phaseCorrelate(pa, pb, cv2.createHanningWindow(pa.shape[::-1], cv2.CV_32F))
    return float(np.hypot(dx, dy))


# A wide crop, so that the wall behind the woman is inside the aligned frame.
WIDE = dict(crop="landmarks", margin=1.0, size=320, color="rgb")


def test_clip_transform_keeps_static_background_point_fixed_across_frames(pexels_frames):
    clip = align_frames(pexels_frames, FaceConfig(**WIDE), reference_index=0)
    assert len(clip.transforms) == 1
    point = clip.transform.apply(np.array([BACKGROUND]))[0]
    assert 24 <= point.min() and point.max() < 320 - 24  # the wall point is well inside the aligned frame
    shifts = [_patch_shift(clip.frames[0], frame, point) for frame in clip.frames[1:]]
    assert max(shifts) < 0.5, shifts


def test_per_frame_refitting_moves_the_background_unlike_the_clip_transform(pexels_frames):
    clip = align_frames(pexels_frames, FaceConfig(**WIDE, mode="per-frame"), reference_index=0)
    assert len(clip.transforms) == len(pexels_frames)
    assert clip.frame_landmarks.shape == (len(pexels_frames), 68, 2)
    point = clip.transforms[0].apply(np.array([BACKGROUND]))[0]
    shifts = [_patch_shift(clip.frames[0], frame, point) for frame in clip.frames[1:]]
    # Following the head drags the wall along: several pixels, where the clip protocol keeps it still.
    assert max(shifts) > 3.0, shifts


def test_reference_frame_decides_the_transform(pexels_frames):
    # this crop depends on the eyes only, so they land on fixed output points
    config = FaceConfig(crop="eyes", color="rgb")
    on_first = align_frames(pexels_frames, config, reference_index=0)
    on_last = align_frames(pexels_frames, config, reference_index=len(pexels_frames) - 1)
    assert on_first.reference_index == 0 and on_last.reference_index == len(pexels_frames) - 1
    # The head moved between the two reference frames, so the two clip transforms differ ...
    assert np.abs(on_first.transform.matrix - on_last.transform.matrix)[:, 2].max() > 5
    # ... and each puts the eyes of its own reference frame on the same template points.
    assert np.allclose(eye_centres(on_first.landmarks), eye_centres(on_last.landmarks), atol=1e-3)


def test_grey_output_has_no_channel_axis_and_requested_size(pexels_frames):
    clip = align_frames(pexels_frames[:2], FaceConfig(color="grey", size=112))
    assert clip.frames.shape == (2, 112, 112) and clip.frames.dtype == np.uint8

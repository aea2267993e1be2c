"""ECC stabilisation: each frame's crop registered rigidly to the reference crop, inside the one warp per frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from merkit.face.clip import FaceConfig, align_frames, eye_mask, stabilise_frames
from merkit.inputs import Preprocessing

GREY = dict(size=112, color="grey", upsample=0)
SHIFT = (0.8, -0.5)  # source pixels
DEGREES = 0.4


def _drift(image: np.ndarray) -> np.ndarray:
    """(3, 3) rigid head drift in source pixels: a turn about the image centre, then a shift."""
    h, w = image.shape[:2]
    matrix = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), DEGREES, 1.0), [0, 0, 1]])
    matrix[:2, 2] += SHIFT
    return matrix


@pytest.fixture(scope="module")
def drifted():
    face = astronaut()
    moved = cv2.warpAffine(face, _drift(face)[:2], face.shape[1::-1], flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
    return [face, moved]


def _face_difference(clip) -> float:
    """Mean |frame 1 - frame 0| inside the crop, away from its border (grey levels)."""
    a, b = (np.float32(f[16:-16, 16:-16]) for f in clip.frames[:2])
    return float(np.abs(b - a).mean())


def test_ecc_removes_a_rigid_head_drift_that_the_clip_transform_keeps(drifted):
    plain = align_frames(drifted, FaceConfig(**GREY))
    stable = align_frames(drifted, FaceConfig(**GREY, stabilise="ecc"))
    assert plain.stabilisation is None and stable.stabilisation.shape == (2, 2, 3)
    np.testing.assert_allclose(stable.stabilisation[0], np.eye(2, 3))
    # Frame 1 is frame 0 moved by the drift D, so its crop at M D M^-1 x shows what the reference crop shows at x.
    matrix = plain.transform.matrix
    expected = (matrix @ _drift(drifted[0]) @ np.linalg.inv(matrix))[:2]
    np.testing.assert_allclose(stable.stabilisation[1][:, :2], expected[:, :2], atol=2e-3)  # 0.1 degree
    np.testing.assert_allclose(stable.stabilisation[1][:, 2], expected[:, 2], atol=0.1)  # crop pixels
    # About one source pixel of drift, ~0.6 crop pixels; what is left of the difference is interpolation.
    assert _face_difference(stable) < 0.5 * _face_difference(plain), (_face_difference(stable),
                                                                      _face_difference(plain))
    # The reference frame is untouched, so its landmarks still hold.
    np.testing.assert_array_equal(stable.frames[0], plain.frames[0])
    assert not stable.notes


def test_identical_frames_get_identity_maps(drifted):
    crop = align_frames(drifted[:1], FaceConfig(**GREY)).frames[0]
    maps, notes = stabilise_frames([crop, crop.copy()], reference_index=0)
    np.testing.assert_allclose(maps[1], np.eye(2, 3), atol=1e-3)
    assert notes == []


def test_unregistrable_frame_keeps_identity_and_is_noted(drifted):
    crop = align_frames(drifted[:1], FaceConfig(**GREY)).frames[0]
    blank = np.full_like(crop, 128)  # no texture: ECC cannot fit it
    maps, notes = stabilise_frames([crop, blank], reference_index=0, frame_numbers=[10, 11])
    np.testing.assert_array_equal(maps[1], np.eye(2, 3))
    assert len(notes) == 1 and notes[0].startswith("stabilise-failed:") and "frame 11" in notes[0]


def test_piecewise_affine_alignment_is_stabilised_too(drifted):
    config = dict(GREY, align="piecewise-affine")
    plain = align_frames(drifted, FaceConfig(**config))
    stable = align_frames(drifted, FaceConfig(**config, stabilise="ecc"))
    assert _face_difference(stable) < 0.5 * _face_difference(plain)


def test_stabilise_is_a_clip_mode_option_and_part_of_the_record():
    with pytest.raises(ValueError, match="stabilise"):
        FaceConfig(mode="per-frame", stabilise="ecc")
    with pytest.raises(ValueError, match="stabilise"):
        FaceConfig(stabilise="optical-flow")
    stable = Preprocessing(FaceConfig(stabilise="ecc"))
    assert stable.config_hash() != Preprocessing().config_hash()
    assert Preprocessing.from_dict(stable.to_dict(), "record").face.stabilise == "ecc"


def test_eye_mask_covers_the_eyes_and_spares_brows_and_mouth(drifted):
    clip = align_frames(drifted[:1], FaceConfig(**GREY))
    mask = eye_mask(clip.landmarks, 112)
    at = lambda i: float(mask[int(round(clip.landmarks[i, 1])), int(round(clip.landmarks[i, 0]))])  # noqa: E731
    assert min(at(i) for i in (37, 38, 40, 41, 43, 44, 46, 47)) > 0.95  # the lids
    assert max(at(i) for i in (*range(17, 27), 48, 54, 57, 33)) < 0.05  # brows, mouth, nose tip


def test_freeze_eyes_removes_eye_motion_and_keeps_the_rest(drifted):
    face = drifted[0]
    config = FaceConfig(**GREY)
    landmarks = align_frames([face], config).source_landmarks
    closed = face.copy()
    for eye in (slice(36, 42), slice(42, 48)):  # a crude "blink": paint the eyes over
        cv2.fillConvexPoly(closed, np.round(landmarks[eye]).astype(np.int32), (90, 60, 50))
    mouth = np.round(landmarks[48:60]).astype(np.int32)
    cv2.fillConvexPoly(closed, mouth, (200, 40, 40))  # and a change elsewhere on the face
    plain = align_frames([face, closed], config)
    frozen = align_frames([face, closed], FaceConfig(**GREY, freeze_eyes=True))
    mask = eye_mask(plain.landmarks, 112)
    eyes, rest = mask > 0.99, mask < 0.01
    change = lambda clip: np.abs(np.float32(clip.frames[1]) - np.float32(clip.frames[0]))  # noqa: E731
    assert change(plain)[eyes].mean() > 10 and change(frozen)[eyes].max() == 0
    np.testing.assert_array_equal(frozen.frames[1][rest], plain.frames[1][rest])
    assert change(frozen)[rest].max() > 50  # the mouth change is still there
    np.testing.assert_array_equal(frozen.frames[0], plain.frames[0])
    with pytest.raises(ValueError, match="freeze_eyes"):
        FaceConfig(mode="per-frame", freeze_eyes=True)

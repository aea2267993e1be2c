"""The nine FRL-DGT AU regions and the crops, on the aligned real astronaut face and on the template."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from merkit.face.align import MIRROR_68, TEMPLATE_68, eye_centres
from merkit.face.clip import FaceConfig, align_image
from merkit.face.crop import crop_box, crop_matrix
from merkit.face.regions import AU_REGION_NAMES, AU_REGIONS, au_regions, crop_au_regions, region_side


@pytest.fixture(scope="module")
def aligned_astronaut():
    config = FaceConfig(size=448, crop="landmarks", margin=0.3, color="rgb")
    image, landmarks, _ = align_image(skimage.data.astronaut(), config)
    return image, landmarks


def test_nine_regions_of_90px_at_224_scale_with_the_image():
    assert AU_REGION_NAMES == ("R1L", "R1R", "R2", "R3L", "R3R", "R4", "R5L", "R5R", "R6")
    assert region_side(224) == 90 and region_side(448) == 180
    for region in AU_REGIONS:
        assert np.isclose(sum(w for _, w in region.weights), 1.0), region.name


def test_regions_sit_where_the_paper_describes_them(aligned_astronaut):
    image, landmarks = aligned_astronaut
    centre = {r.name: r.centre(landmarks) for r in AU_REGIONS}
    (left_eye, right_eye) = eye_centres(landmarks)
    mouth = landmarks[48:68].mean(axis=0)
    assert centre["R1L"][1] < left_eye[1] and centre["R1R"][1] < right_eye[1]  # above the eyes
    assert centre["R3L"][1] > left_eye[1] and centre["R3R"][1] > right_eye[1]  # under the eyes
    assert abs(centre["R2"][0] - (left_eye[0] + right_eye[0]) / 2) < 5  # between the brows ...
    assert centre["R2"][1] < left_eye[1]  # ... above the eye line
    assert landmarks[27, 1] < centre["R4"][1] < landmarks[33, 1] + 1  # along the nose
    assert centre["R5L"][0] < landmarks[48, 0] and centre["R5R"][0] > landmarks[54, 0]  # outside the corners
    assert centre["R6"][1] > mouth[1]  # mouth and chin
    assert centre["R1L"][0] < centre["R2"][0] < centre["R1R"][0]  # L is the image's left


def test_boxes_are_full_squares_inside_the_image(aligned_astronaut):
    image, landmarks = aligned_astronaut
    boxes = au_regions(landmarks, image.shape[0])
    for left, top, right, bottom in boxes.values():
        assert right - left == bottom - top == 180
        assert 0 <= left and 0 <= top and right <= 448 and bottom <= 448
    patches = crop_au_regions(image, landmarks)
    assert patches.shape == (9, 180, 180, 3) and patches.dtype == np.uint8
    left, top, right, bottom = boxes["R4"]
    assert np.array_equal(patches[AU_REGION_NAMES.index("R4")], image[top:bottom, left:right])


def test_clip_patches_cut_the_same_boxes_from_every_frame(aligned_astronaut):
    image, landmarks = aligned_astronaut
    clip = np.stack([image, image[::-1, ::-1]])
    patches = crop_au_regions(clip, landmarks)
    assert patches.shape == (9, 2, 180, 180, 3)
    assert np.array_equal(patches[:, 0], crop_au_regions(image, landmarks))
    grey = crop_au_regions(clip[..., 0], landmarks)
    assert grey.shape == (9, 2, 180, 180)


def test_left_and_right_regions_mirror_each_other_on_the_template():
    mirrored = TEMPLATE_68[MIRROR_68] * np.array([-1.0, 1.0])
    by_name = {r.name: r for r in AU_REGIONS}
    for pair in ("R1", "R3", "R5"):
        left, right = by_name[pair + "L"].centre(TEMPLATE_68), by_name[pair + "R"].centre(TEMPLATE_68)
        assert np.allclose(left * [-1, 1], right, atol=1e-4), pair
    assert np.allclose(by_name["R2"].centre(mirrored), by_name["R2"].centre(TEMPLATE_68), atol=1e-4)


def test_slstt_crop_is_centred_on_nose_tip_with_the_slstt_side():
    cx, cy, side = crop_box(TEMPLATE_68, "slstt")
    assert (cx, cy) == tuple(TEMPLATE_68[30])
    y = TEMPLATE_68[:, 1]
    assert side == pytest.approx((y[8] - y[19]) + (y[8] - y[57]))
    corners = np.array([[cx - side / 2, cy - side / 2], [cx + side / 2, cy + side / 2], [cx, cy]])
    mapped = corners @ crop_matrix((cx, cy, side), 224)[:2, :2].T + crop_matrix((cx, cy, side), 224)[:2, 2]
    assert np.allclose(mapped, [[-0.5, -0.5], [223.5, 223.5], [111.5, 111.5]])


def test_landmarks_crop_contains_every_landmark_with_its_margin():
    cx, cy, side = crop_box(TEMPLATE_68, "landmarks", margin=0.2)
    extent = np.max(TEMPLATE_68.max(0) - TEMPLATE_68.min(0))
    assert side == pytest.approx(1.4 * extent)
    assert np.all(np.abs(TEMPLATE_68 - [cx, cy]) <= side / 2 - 0.2 * extent + 1e-9)


def test_unknown_crop_is_rejected():
    with pytest.raises(ValueError, match="crop must be one of"):
        crop_box(TEMPLATE_68, "mouth")

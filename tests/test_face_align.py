"""Alignment on real faces: similarity puts the eyes on the template, piecewise-affine moves all 68 landmarks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
from skimage.transform import PiecewiseAffineTransform

from merkit.face.align import MIRROR_68, TEMPLATE_68, apply_matrix, eye_angle, eye_centres, similarity_to_template
from merkit.face.clip import FaceConfig, align_image, fit_face
from merkit.face.crop import crop_box, crop_matrix
from merkit.face.landmarks import detect_landmarks


def _rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def _template_eyes_in_output(landmarks: np.ndarray, config: FaceConfig) -> np.ndarray:
    """Where the template's eye centres sit in the output crop that ``config`` makes of this face."""
    to_template = similarity_to_template(landmarks, config.similarity_points)
    box = crop_box(apply_matrix(to_template, landmarks), config.crop, config.margin)
    return apply_matrix(crop_matrix(box, config.size), eye_centres(TEMPLATE_68))


def _faces(shared_data):
    yield "astronaut", skimage.data.astronaut()
    yield "astronaut rotated 12 deg", _rotate(skimage.data.astronaut(), 12)
    yield "single_face", cv2.imread(str(shared_data / "faces" / "single_face.jpg"))[:, :, ::-1].copy()


@pytest.mark.parametrize("crop", ["slstt", "eyes", "landmarks"])
def test_similarity_puts_eye_centres_within_1px_of_template_and_eye_line_level_within_1deg(shared_data, crop):
    config = FaceConfig(crop=crop)
    for name, image in _faces(shared_data):
        source_landmarks, _, _ = detect_landmarks(image)
        aligned, landmarks, _ = align_image(image, config)
        target = _template_eyes_in_output(source_landmarks, config)
        # The face's own eye centres, carried into the crop, land on the template (the eye fit is exact).
        assert np.linalg.norm(eye_centres(landmarks) - target, axis=1).max() < 1.0, name
        assert abs(eye_angle(landmarks)) < 1.0, name
        # Landmarks fitted afresh on the warped pixels agree, so the pixels moved as the landmarks say. dlib's
        # re-fit on a resampled image scatters by about 1 px (measured 0.2-1.3 px on these faces), hence 1.5 px.
        redetected, _, _ = detect_landmarks(aligned)
        assert np.linalg.norm(eye_centres(redetected) - target, axis=1).max() < 1.5, name
        assert abs(eye_angle(redetected)) < 1.0, name


def test_rotated_face_is_levelled_by_similarity():
    image = _rotate(skimage.data.astronaut(), 12)
    source_landmarks, _, _ = detect_landmarks(image)
    assert abs(eye_angle(source_landmarks)) > 8  # the input really is tilted
    aligned, _, _ = align_image(image)
    assert abs(eye_angle(detect_landmarks(aligned)[0])) < 1.0


def test_eyes_nose_mouth_similarity_is_a_least_squares_fit_close_to_the_eye_fit():
    landmarks, _, _ = detect_landmarks(skimage.data.astronaut())
    eyes_only = apply_matrix(similarity_to_template(landmarks, "eyes"), landmarks)
    four_points = apply_matrix(similarity_to_template(landmarks, "eyes-nose-mouth"), landmarks)
    assert np.allclose(eye_centres(eyes_only), eye_centres(TEMPLATE_68), atol=1e-9)
    residual = np.abs(eye_centres(four_points) - eye_centres(TEMPLATE_68)).max()
    assert 0 < residual < 0.15  # no longer exact on the eyes, but within 15 % of the inter-ocular distance


def test_piecewise_affine_moves_redetected_landmarks_onto_the_template(shared_data):
    config = FaceConfig(align="piecewise-affine")
    image = cv2.imread(str(shared_data / "faces" / "single_face.jpg"))[:, :, ::-1].copy()
    source_landmarks, _, _ = detect_landmarks(image)
    aligned, landmarks, transform = align_image(image, config)
    template = apply_matrix(crop_matrix(crop_box(TEMPLATE_68, config.crop, config.margin), config.size),
                            TEMPLATE_68)
    assert np.allclose(landmarks, template)
    assert np.allclose(transform.apply(source_landmarks), template, atol=1e-6)
    redetected, _, _ = detect_landmarks(aligned)
    before = np.abs(apply_matrix(transform.matrix, source_landmarks) - template).mean()
    after = np.abs(redetected - template).mean()
    assert after < 0.5 * before  # the face took the template's shape, beyond what the similarity achieves


def test_piecewise_affine_mapping_matches_scikit_image():
    landmarks, _, _ = detect_landmarks(skimage.data.astronaut())
    transform, _ = fit_face(landmarks, FaceConfig(align="piecewise-affine"))
    reference = PiecewiseAffineTransform.from_estimate(transform.output_points, transform.source_points)
    points = np.random.default_rng(0).uniform(0, 224, (400, 2))
    assert np.allclose(transform.invert(points), reference(points), atol=1e-6)
    assert np.allclose(transform.apply(transform.invert(points)), points, atol=1e-6)


def test_template_is_left_right_symmetric_with_eyes_at_unit_distance():
    mirrored = TEMPLATE_68[MIRROR_68] * np.array([-1.0, 1.0])
    assert np.allclose(mirrored, TEMPLATE_68, atol=1e-4)
    assert np.allclose(eye_centres(TEMPLATE_68), [[-0.5, 0.0], [0.5, 0.0]], atol=1e-4)

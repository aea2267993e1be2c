"""Detection on real images: the largest face is used, a faceless frame raises an error naming the sample."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from merkit.datasets.table import new_sample_table
from merkit.errors import Where
from merkit.face.clip import FaceConfig, align_image
from merkit.face.landmarks import FaceNotFoundError, detect_faces, detect_landmarks
from merkit.inputs import Preprocessing, row_inputs


def _area(box):
    return (box[2] - box[0]) * (box[3] - box[1])


def test_largest_face_is_chosen_in_multi_face_image(shared_data):
    image = cv2.imread(str(shared_data / "faces" / "multi_face.jpg"))[:, :, ::-1].copy()
    boxes = detect_faces(image)
    assert len(boxes) >= 4  # the photo shows five people; HOG finds at least four
    landmarks, box, n_faces = detect_landmarks(image)
    assert n_faces == len(boxes)
    assert _area(box) == max(_area(b) for b in boxes)
    assert sum(_area(box) == _area(b) for b in boxes) == 1  # strictly the largest, not a tie
    left, top, right, bottom = box
    centre = landmarks.mean(axis=0)
    assert left <= centre[0] <= right and top <= centre[1] <= bottom  # the landmarks belong to that face


def test_faceless_image_raises_face_not_found_naming_where():
    with pytest.raises(FaceNotFoundError, match=r"no face detected \[dataset=casme2, subject=sub01, sample=EP02_01f"):
        detect_landmarks(skimage.data.coffee(), where=Where("casme2", "sub01", "EP02_01f", "img46.jpg"))
    with pytest.raises(FaceNotFoundError):
        align_image(skimage.data.coffee(), FaceConfig())


def test_faceless_reference_frame_error_names_dataset_subject_sample_and_frame(tmp_path):
    folder = tmp_path / "sub07" / "EP01_02"
    folder.mkdir(parents=True)
    frames = []
    for number in (10, 11, 12):
        path = folder / f"img{number}.jpg"
        cv2.imwrite(str(path), skimage.data.coffee()[:, :, ::-1])
        frames.append(str(path))
    table = new_sample_table([dict(dataset="casme2", subject="sub07", sample="EP01_02", emotion="others",
                                   onset=11, apex=12, offset=12, frames=frames)])
    with pytest.raises(FaceNotFoundError) as caught:
        row_inputs(table.iloc[0].to_dict(), Preprocessing())
    message = str(caught.value)
    for part in ("dataset=casme2", "subject=sub07", "sample=EP01_02", "frame=img11.jpg"):
        assert part in message  # the onset frame (11) is the one the face is fitted on
    assert caught.value.where.frame == "img11.jpg"


def test_cnn_detector_finds_the_astronaut_face_like_hog():
    image = skimage.data.astronaut()
    hog = np.array(detect_faces(image, "hog")[0], dtype=float)
    cnn = np.array(detect_faces(image, "cnn", upsample=0)[0], dtype=float)
    centre = lambda b: np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])  # noqa: E731
    assert np.linalg.norm(centre(hog) - centre(cnn)) < 0.25 * (hog[2] - hog[0])

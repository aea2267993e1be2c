"""Regenerate the face-stage figures of docs/face.md from the public-domain astronaut photo of scikit-image.

    python docs/scripts/face_figures.py            # writes docs/img/face_au_regions.png and docs/img/face_show_face.png

Both draw the 224 px RGB crop (``color="rgb"``; FaceConfig's default is now grey). The second figure is exactly what
``merkit show-face astronaut.png --out docs/img/face_show_face.png --set data.face.color=rgb`` draws.
"""

from __future__ import annotations

from pathlib import Path

import skimage.data

from merkit.face.clip import FaceConfig
from merkit.face.show import au_region_figure, show_face

IMG = Path(__file__).resolve().parents[1] / "img"
FACE = FaceConfig(color="rgb")


def main() -> None:
    face = skimage.data.astronaut()
    print(au_region_figure(face, IMG / "face_au_regions.png", FACE))
    print(show_face(face, IMG / "face_show_face.png", FACE))


if __name__ == "__main__":
    main()

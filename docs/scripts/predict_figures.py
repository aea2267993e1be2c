"""Regenerate the figures of ``docs/predict.md``: ``docs/img/predict_timeline.png`` (``--spot`` on the Pexels video:
micro intervals shaded and labelled, macro ones hatched), ``docs/img/predict_example.png`` (one clip: frames
390-400, the clip docs/predict.md's command names) and ``docs/img/predict_smile.png`` (frames 324-348, inside the
smile near 0:14, with its domain warnings).

The model is the packaged default, ``megc2019-ststnet`` (``--checkpoint`` takes any name or folder that
``Predictor.from_pretrained`` takes). The video is ``../shared/data/faces/WolfgangLanger_Pexels.mp4`` (Pexels
license). About a minute on a 2-core CPU, most of it TV-L1 on the spotted candidates.

Run: ``python docs/scripts/predict_figures.py [--checkpoint NAME_OR_DIR] [--video PATH] [--out docs/img]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VIDEO = REPO.parent / "shared" / "data" / "faces" / "WolfgangLanger_Pexels.mp4"


def main() -> None:
    from merkit.predict import Predictor, SpotConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="default: the packaged megc2019-ststnet")
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = parser.parse_args()

    predictor = Predictor.from_pretrained(args.checkpoint)
    print(f"model: {predictor.source}")
    spot = predictor.spot(args.video, SpotConfig(), step=2)
    spot.save_timeline(args.out / "predict_timeline.png")
    print(spot.intervals.to_string(index=False))
    print(f"warnings: {spot.warnings}")
    # The figure shows one clip at full frame rate, the one docs/predict.md's command names, so that it does not
    # move with the spotting settings.
    prediction = predictor.predict(args.video, onset=390, offset=400)
    prediction.save_figure(args.out / "predict_example.png")
    print(json.dumps(prediction.to_dict(), indent=2))
    smile = predictor.predict(args.video, onset=324, offset=348)
    smile.save_figure(args.out / "predict_smile.png")
    print(json.dumps(smile.to_dict(), indent=2))


if __name__ == "__main__":
    main()

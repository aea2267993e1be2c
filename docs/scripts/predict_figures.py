"""Regenerate the figures of ``docs/predict.md``: ``docs/img/predict_timeline.png`` (``--spot`` on the Pexels video)
and ``docs/img/predict_example.png`` (one clip: frames 390-400, the command ``docs/predict.md`` shows, apex spotted).

The checkpoint is STSTNet's ``cpu`` preset trained on the demo's synthetic set with the demo's run config
(``benchmarks/bench_predict.py: demo_checkpoint``); it is written to ``--checkpoint`` (default
``~/.cache/merkit/predict-docs/ckpt``, or under ``$MERKIT_CACHE``) and reused. The video is
``../shared/data/faces/WolfgangLanger_Pexels.mp4`` (Pexels license). About 1-2 minutes on a 2-core CPU the first
time (the synthetic set is generated), then about 30 s.

Run: ``python docs/scripts/predict_figures.py [--checkpoint DIR] [--video PATH] [--out docs/img]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VIDEO = REPO.parent / "shared" / "data" / "faces" / "WolfgangLanger_Pexels.mp4"


def main() -> None:
    from merkit.inputs.build import default_cache_dir
    from merkit.predict import Predictor, SpotConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=default_cache_dir() / "predict-docs" / "ckpt")
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = parser.parse_args()

    if not (args.checkpoint / "checkpoint.json").is_file():
        spec = importlib.util.spec_from_file_location("bench_predict", REPO / "benchmarks" / "bench_predict.py")
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        bench.demo_checkpoint(args.checkpoint)
    predictor = Predictor.from_checkpoint(args.checkpoint)
    spot = predictor.spot(args.video, SpotConfig(), step=2)
    spot.save_timeline(args.out / "predict_timeline.png")
    print(spot.intervals.to_string(index=False))
    # The figure shows one clip at full frame rate, the one docs/predict.md's command names, so that it does not
    # move with the spotting settings.
    prediction = predictor.predict(args.video, onset=390, offset=400)
    prediction.save_figure(args.out / "predict_example.png")
    print(json.dumps(prediction.to_dict(), indent=2))


if __name__ == "__main__":
    main()

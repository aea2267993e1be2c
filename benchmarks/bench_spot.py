"""Speed of ``merkit predict --spot`` on the CPU, as a ratio to the video's own duration (>= 1: real time).

Videos: the Pexels video of the shared data (``../shared/data/faces/WolfgangLanger_Pexels.mp4``, 640x360, 24 fps,
472 frames; ``$MERKIT_SHARED_DATA`` names another data folder) and a synthetic long video
(:func:`merkit.synthetic.generate_long_videos`: 640x360, 25 fps, 20 s, seed 0, 3 micro- and 1 macro-expression),
written once to a temporary folder.

Each run is one :meth:`merkit.predict.Predictor.spot` call, decoding included, single process, 1 torch thread,
after a warm-up call on 30 frames. The model is the packaged default, ``megc2019-ststnet`` (its record: the
composite's recipe, 224 px grey similarity-aligned face with the landmarks crop, dlib HOG with upsample 1, TV-L1
with OpenCV's defaults), which is what ``merkit predict --spot`` runs out of the box. ``--checkpoint`` names
another (anything ``Predictor.from_pretrained`` takes). ``--no-model`` times spotting alone
(:func:`merkit.predict.scan.spot_video`). ``--set size=112 --set method=dis ...`` changes SpotConfig fields.

Run: ``python benchmarks/bench_spot.py [--repeats 2] [--set key=value ...]``. Prints Markdown, with the machine
and its load average. To time an older merkit on the same inputs, write the synthetic video once
(``merkit synth DIR --long-videos 1 --fps 25 --seed 0``) and pass ``--synthetic-dir DIR/vid01`` with that
merkit on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("MERKIT_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
VIDEO = SHARED / "faces" / "WolfgangLanger_Pexels.mp4"


def parse_set(items: list[str]) -> dict:
    """``key=value`` pairs as SpotConfig fields (numbers parsed, ``none`` is None)."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if value.lower() == "none":
            out[key] = None
        else:
            try:
                out[key] = int(value)
            except ValueError:
                try:
                    out[key] = float(value)
                except ValueError:
                    out[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="default: the packaged megc2019-ststnet")
    parser.add_argument("--no-model", action="store_true", help="spotting alone, no recognition")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="SpotConfig field=value (repeatable)")
    parser.add_argument("--videos", default="pexels,synthetic", help="comma-separated: pexels, synthetic")
    parser.add_argument("--synthetic-dir", type=Path, default=None,
                        help="a long video written before (a frame folder, 25 fps) instead of writing one")
    args = parser.parse_args()

    import torch

    from merkit.media import read_video
    from merkit.predict import Predictor, SpotConfig

    torch.set_num_threads(1)
    config = dataclasses.replace(SpotConfig(), **parse_set(args.set))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = {}
        if "pexels" in args.videos:
            videos["Pexels 640x360 24 fps"] = (VIDEO, None)
        if "synthetic" in args.videos:
            folder = args.synthetic_dir
            if folder is None:
                from merkit.synthetic import generate_long_videos

                generate_long_videos(tmp / "long", videos=1, seconds=20.0, fps=25.0, seed=0)
                folder = tmp / "long" / "vid01"
            videos["synthetic 640x360 25 fps"] = (folder, 25.0)
        if args.no_model:
            from merkit.predict.scan import SPOT_FACE, spot_video

            run = lambda path, fps: spot_video(path, config, SPOT_FACE, fps=fps)  # noqa: E731
            what = "spotting only (SPOT_FACE: HOG upsample 1, SLSTT crop)"
        else:
            predictor = Predictor.from_pretrained(args.checkpoint)
            run = lambda path, fps: predictor.spot(path, config, fps=fps)  # noqa: E731
            face, motion = predictor.preprocessing.face, predictor.preprocessing.motion
            what = (f"Predictor.spot with {predictor.source}: face {face.size} px, HOG upsample {face.upsample}; "
                    f"recognition {motion.method} {motion.flow_params or 'defaults'}")
        warm = read_video(VIDEO, 0, 29) if VIDEO.is_file() else None
        if warm is not None:
            run(warm, None)
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {what}; SpotConfig "
              f"{ {k: v for k, v in dataclasses.asdict(config).items() if k != 'default_fps'} }\n")
        print("| video | frames | video (s) | wall (s) | frames/s | × real time | read / face / motion / model (s) "
              "| intervals | load before / after |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, (path, fps) in videos.items():
            for _ in range(args.repeats):
                load0 = os.getloadavg()[0]
                t0 = time.perf_counter()
                result = run(path, fps)
                wall = time.perf_counter() - t0
                n = len(result.frame_numbers)
                seconds = n / result.fps
                t = result.timing
                print(f"| {name} | {n} | {seconds:.2f} | {wall:.2f} | {n / wall:.1f} | **{seconds / wall:.2f}** | "
                      f"{t.read:.2f} / {t.face:.2f} / {t.motion:.2f} / {t.model:.3f} | {len(result.intervals)} | "
                      f"{load0:.1f} / {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()

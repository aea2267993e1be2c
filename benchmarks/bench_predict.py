"""End-to-end latency of ``merkit predict`` per clip, split into face, motion and model.

The checkpoint is STSTNet's ``cpu`` preset trained on the demo's synthetic set with the demo's preprocessing
(:data:`merkit.demo.DEMO_FACE` and :data:`merkit.demo.DEMO_MOTION`: a 160 px grey similarity-aligned crop, TV-L1
with 3 scales and 2 warps, 28x28 u/v/strain), unless ``--checkpoint`` names another. Clips are cut from the Pexels
video of the shared data (``../shared/data/faces/WolfgangLanger_Pexels.mp4``, 640x360, 24 fps), ``--clips`` of them
at evenly spaced onsets, each 12 frames (0.5 s): once with the apex given (onset + 6) and once with the apex
spotted. Each clip is one :meth:`merkit.predict.Predictor.predict` call, single process, 1 torch thread; the first
call is a warm-up.

Run: ``python benchmarks/bench_predict.py [--clips 10] [--face-size 112] [--checkpoint DIR]``. Prints Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import tempfile
from pathlib import Path

VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "WolfgangLanger_Pexels.mp4"


def demo_checkpoint(out: Path, cache: Path | None = None, face_size: int | None = None) -> Path:
    """Train STSTNet (cpu preset, 60 epochs) on the demo's synthetic set (5 subjects x 3 classes x 4 clips) with
    the demo's run config (:func:`merkit.demo.demo_config`: the raw path with the demo's preprocessing); the set and
    its inputs are cached in ``cache`` (default ``~/.cache/merkit/predict``, apart from the demo's own cache so
    that a concurrent demo run cannot collide). ``face_size`` replaces the demo's 160 px crop (the inputs are then
    recomputed, under another record)."""
    from merkit import api
    from merkit.demo import cached_dataset, demo_config
    from merkit.inputs.build import default_cache_dir

    cache = cache or default_cache_dir() / "predict"
    cache.mkdir(parents=True, exist_ok=True)
    root = cached_dataset(cache, subjects=5, clips_per_class=4, seed=0)
    config = demo_config("ststnet", release=root.resolve(), cache=(cache / "inputs").resolve())
    if face_size is not None:
        config.data.face = dataclasses.replace(config.data.face, size=face_size)
    return api.train(config, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--face-size", type=int, default=None, help="train with this crop side instead of 160 px")
    args = parser.parse_args()

    import torch

    from merkit.errors import DataError
    from merkit.predict import Predictor, read_video

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or demo_checkpoint(Path(tmp) / "ckpt", face_size=args.face_size)
        predictor = Predictor.from_checkpoint(checkpoint)
    video = read_video(args.video)
    length = 12
    onsets = [int(x) for x in range(0, len(video) - length, (len(video) - length) // args.clips)][: args.clips]
    clip = lambda onset: type(video)(video.frames[onset:onset + length], video.numbers[onset:onset + length],
                                     video.fps, video.source)
    predictor.predict(clip(onsets[0]), onset=onsets[0], apex=onsets[0] + 6)  # warm-up (dlib, torch)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; {len(onsets)} clips of {length} frames; face "
          f"{predictor.preprocessing.face.size} px {predictor.preprocessing.face.color}, motion "
          f"{list(predictor.preprocessing.motion.representations)} {predictor.preprocessing.motion.method} "
          f"{predictor.preprocessing.motion.flow_params}\n")
    print("| apex | face (s) | motion (s) | model (s) | face + motion + model (s) | max (s) | failed |")
    print("|---|---|---|---|---|---|---|")
    for mode in ("given", "spotted"):
        rows, failed = [], 0
        for onset in onsets:
            try:
                result = predictor.predict(clip(onset), onset=onset, apex=onset + 6 if mode == "given" else None)
            except DataError as error:  # a clip without a face is counted, not fatal, for a latency benchmark
                print(f"<!-- clip at {onset}: {error} -->")
                failed += 1
                continue
            t = result.timing
            rows.append((t.face, t.motion, t.model, t.face + t.motion + t.model))
        med = [statistics.median(c) for c in zip(*rows)]
        print(f"| {mode} | {med[0]:.3f} | {med[1]:.3f} | {med[2]:.4f} | {med[3]:.3f} | "
              f"{max(r[3] for r in rows):.3f} | {failed} |")
    print("\nmedians over clips; reading (decoding) the video is not included")


if __name__ == "__main__":
    main()

"""Optical flow speed per backend, and the 2-worker vs 1-worker speed-up of motion preprocessing.

1. Pairs per second of each backend (TV-L1, Farneback, DIS with their merkit defaults) on grey face pairs at
   224x224 and 28x28: the astronaut's face (``skimage.data.astronaut()``) and a copy moved by a sub-pixel shift.
   Single process, OpenCV's default thread count.
2. A whole synthetic dataset (:func:`merkit.synthetic.generate`) run through the inputs stage,
   :func:`merkit.inputs.build_inputs`, with the default record (the face fitted on the onset, 224 px grey crops of
   the onset and apex frames, onset->apex TV-L1 flow and strain at 28 px), with 1 and with 2 worker processes, each
   into a fresh cache; the ratio of the wall times. Only the onset and apex frames are decoded and aligned (the
   ``preprocess_motion`` that docs/benchmarks.md measured before merkit.inputs aligned and cached every frame).

3. With ``--spotting``: apex spotting accuracy (:func:`merkit.motion.spotting.spot_apex`) on the aligned clips of
   a synthetic dataset (drift, blinks, flicker, noise, JPEG), per measure: how many clips are spotted within 2
   frames of the true apex, and the median absolute error.

Run: ``python benchmarks/bench_flow.py [--spotting]`` (about 2-5 minutes on a 2-core machine). Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from merkit.motion.flow import FLOW_METHODS, compute_flow

REPEATS = {("tvl1", 224): 5, ("tvl1", 28): 50, ("farneback", 224): 50, ("farneback", 28): 500,
           ("dis", 224): 100, ("dis", 28): 500}


def face_pair(size: int) -> tuple[np.ndarray, np.ndarray]:
    grey = cv2.cvtColor(data.astronaut()[20:260, 140:380], cv2.COLOR_RGB2GRAY)
    first = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    shift = np.float32([[1, 0, 0.6], [0, 1, -0.4]])
    return first, cv2.warpAffine(first, shift, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def pairs_per_second(method: str, size: int, repeats: int) -> float:
    prev, nxt = face_pair(size)
    compute_flow(prev, nxt, method)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        compute_flow(prev, nxt, method)
    return repeats / (time.perf_counter() - start)


def worker_ratio(subjects: int, clips_per_class: int) -> tuple[int, float, float]:
    from merkit.inputs import Preprocessing, build_inputs
    from merkit.synthetic import generate

    with tempfile.TemporaryDirectory() as tmp:
        table = generate(Path(tmp) / "data", subjects=subjects, clips_per_class=clips_per_class, seed=0)
        times = []
        for workers in (1, 2):
            start = time.perf_counter()
            build_inputs(table, Preprocessing(), cache=Path(tmp) / f"cache{workers}", workers=workers,
                         on_error="raise")
            times.append(time.perf_counter() - start)
        return len(table), times[0], times[1]


def aligned_clip(row: dict, face):
    """The aligned face clip of one sample from its onset to its offset, fitted on the onset, as the inputs stage
    aligns it (``resample_clip`` reads every frame, so the stage decodes and aligns them all)."""
    import dataclasses

    from merkit.inputs import Preprocessing, row_inputs
    from merkit.motion.stage import MotionConfig

    record = Preprocessing(dataclasses.replace(face, span="onset-offset"),
                           MotionConfig(representations=("resample_clip",)))
    return row_inputs(row, record).clip


SPOTTING_VARIANTS = (
    ("flow", "none"), ("flow", "affine"), ("strain", "affine"), ("intensity", "none"),
)


def spotting_accuracy(subjects: int, clips_per_class: int, seed: int = 1) -> list[tuple[str, int, int, float]]:
    from merkit.face.clip import FaceConfig
    from merkit.motion.spotting import spot_apex
    from merkit.synthetic import generate

    with tempfile.TemporaryDirectory() as tmp:
        table = generate(tmp, subjects=subjects, clips_per_class=clips_per_class, seed=seed)
        clips = []
        for row in table.to_dict("records"):
            clip = aligned_clip(row, FaceConfig(size=112, color="grey", crop="slstt"))
            clips.append((clip.frames, list(clip.frame_numbers).index(int(row["apex"]))))
    rows = []
    for measure, compensate in SPOTTING_VARIANTS:
        errors = np.array([spot_apex(frames, measure=measure, compensate=compensate).apex - apex
                           for frames, apex in clips])
        rows.append((f"{measure}, compensate={compensate}", int((np.abs(errors) <= 2).sum()), len(errors),
                     float(np.median(np.abs(errors)))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--clips-per-class", type=int, default=2)
    parser.add_argument("--skip-workers", action="store_true", help="only the per-backend speeds")
    parser.add_argument("--spotting", action="store_true", help="also measure apex spotting accuracy")
    parser.add_argument("--only-spotting", action="store_true", help="only measure apex spotting accuracy")
    args = parser.parse_args()
    if args.spotting or args.only_spotting:
        print("\n| spotting measure (112 px crops) | within 2 frames | median abs. error (frames) |\n|---|---|---|")
        for name, hits, total, median in spotting_accuracy(2, 3):
            print(f"| {name} | {hits}/{total} | {median:.1f} |")
        if args.only_spotting:
            return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}, OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads")
    print("\n| backend | pairs/s at 224x224 | pairs/s at 28x28 |\n|---|---|---|")
    for method in FLOW_METHODS:
        speeds = [pairs_per_second(method, size, REPEATS[method, size]) for size in (224, 28)]
        print(f"| {method} | {speeds[0]:.1f} | {speeds[1]:.0f} |")
    if not args.skip_workers:
        n, one, two = worker_ratio(args.subjects, args.clips_per_class)
        print(f"\nsynthetic dataset, {n} clips, build_inputs (align onset and apex + TV-L1 onset->apex flow): "
              f"1 worker {one:.1f} s, 2 workers {two:.1f} s, speed-up {one / two:.2f}x")
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Face-stage benchmark: frames per second of detection + 68 landmarks + alignment, and the speed-up of the inputs
stage (:func:`merkit.inputs.build_inputs`) with ``workers=2`` over ``workers=1`` on a synthetic CASME II-layout
dataset.

    python benchmarks/bench_face.py [--frames 60] [--subjects 2] [--clips-per-class 4]

Part 1 times, on frames of ../shared/data/faces/WolfgangLanger_Pexels.mp4 (640 x 360; skimage's astronaut,
512 x 512, when the video is absent), each step of the per-frame path (HOG detection, 68 landmarks, similarity or
piecewise-affine fit and warp to 224 x 224) and the clip protocol (fit once, warp every frame), also with
``stabilise="ecc"`` (an ECC registration of every frame to the first, folded into its warp).
Part 2 writes ``subjects * clips_per_class * 3`` clips with :func:`merkit.synthetic.generate` into a
temporary folder (never the repository) and runs :func:`merkit.inputs.build_inputs` over them (read JPEGs, detect
on the onset frame, align every frame to a 224 px RGB ``slstt`` crop, write the cache) with 1 and then 2 worker
processes into fresh caches. Aligned frames are no longer cached (the face cache that part 2 measured before
merkit.inputs is gone), so the record asks for ``resample_clip``, a cheap representation that reads every frame of
the clip: each clip's frames are all decoded and aligned, as the face cache did, and only the small
``inputs.npz`` is written. CPU time is that of this process and of its worker processes, start-up included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from merkit.face.clip import FaceConfig, align_frames, fit_face
from merkit.face.landmarks import detect_faces, landmarks_in_box

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "WolfgangLanger_Pexels.mp4"


def _frames(count: int) -> tuple[list[np.ndarray], str]:
    if not VIDEO.is_file():
        return [skimage.data.astronaut()] * count, "skimage astronaut 512x512 (video absent)"
    capture = cv2.VideoCapture(str(VIDEO))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames, f"WolfgangLanger_Pexels.mp4 frames 0-{len(frames) - 1}, 640x360"


def per_frame_speed(frames: list[np.ndarray]) -> dict:
    detect_faces(frames[0])  # load the models outside the timing
    landmarks_in_box(frames[0], detect_faces(frames[0])[0])
    steps = {"detect_hog": 0.0, "landmarks_68": 0.0, "similarity_fit_warp": 0.0, "piecewise_affine_fit_warp": 0.0}
    # SLSTT's crop, the default when docs/benchmarks.md's figures were measured (the crop hardly changes the time).
    similarity, pwa = FaceConfig(crop="slstt"), FaceConfig(align="piecewise-affine", crop="slstt")
    for frame in frames:
        t0 = time.perf_counter()
        box = detect_faces(frame)[0]
        t1 = time.perf_counter()
        landmarks = landmarks_in_box(frame, box)
        t2 = time.perf_counter()
        transform, _ = fit_face(landmarks, similarity)
        transform.warp(frame)
        t3 = time.perf_counter()
        transform, _ = fit_face(landmarks, pwa)
        transform.warp(frame)
        t4 = time.perf_counter()
        for key, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            steps[key] += dt
    n = len(frames)
    ms = {k: round(1000 * v / n, 2) for k, v in steps.items()}
    per_frame = (steps["detect_hog"] + steps["landmarks_68"] + steps["similarity_fit_warp"]) / n
    clip = {}
    for name, config in (("similarity", similarity), ("piecewise-affine", pwa),
                         ("similarity+ecc", FaceConfig(stabilise="ecc", crop="slstt"))):
        t0 = time.perf_counter()
        align_frames(frames, config, reference_index=0)
        clip[name] = round(n / (time.perf_counter() - t0), 1)
    return {"frames": n, "ms_per_frame": ms,
            "ecc_cost_ratio": round(clip["similarity"] / clip["similarity+ecc"], 2),
            "fps_detect_landmarks_similarity_per_frame": round(1 / per_frame, 2),
            "fps_clip_protocol_fit_once_warp_all": clip}


def worker_speedup(subjects: int, clips_per_class: int) -> dict:
    import resource

    from merkit.inputs import Preprocessing, build_inputs
    from merkit.motion.stage import MotionConfig
    from merkit.synthetic import generate

    def cpu_seconds() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    # Every frame aligned (224 px RGB, as the face cache wrote them); resample_clip makes the stage read them all.
    record = Preprocessing(FaceConfig(color="rgb", crop="slstt"), MotionConfig(representations=("resample_clip",)))
    with tempfile.TemporaryDirectory(prefix="merkit-bench-face-") as tmp:
        t0 = time.perf_counter()
        table = generate(Path(tmp) / "casme2", subjects=subjects, clips_per_class=clips_per_class)
        generated = time.perf_counter() - t0
        n_frames = int(sum(len(f) for f in table["frames"]))
        seconds, cpu = {}, {}
        for workers in (1, 2):
            c0, t0 = cpu_seconds(), time.perf_counter()
            features = build_inputs(table, record, cache=Path(tmp) / f"cache-{workers}", workers=workers,
                                    on_error="raise")
            seconds[workers], cpu[workers] = time.perf_counter() - t0, cpu_seconds() - c0
            clips = features.meta["clips"]
            assert clips["computed"] == len(table) and clips["failed"] == 0, clips
    return {"clips": len(table), "frames": n_frames, "generate_s": round(generated, 1),
            "record": record.describe(),
            "seconds": {f"{w}_worker": round(s, 2) for w, s in seconds.items()},
            "frames_per_s": {f"{w}_worker": round(n_frames / s, 1) for w, s in seconds.items()},
            # CPU time of this process and its (reaped) workers: clip work plus the workers' start-up (spawn: import
            # merkit, load the dlib models).
            "cpu_s": {f"{w}_worker": round(v, 2) for w, v in cpu.items()},
            "speedup_2_over_1": round(seconds[1] / seconds[2], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--subjects", type=int, default=2)
    parser.add_argument("--clips-per-class", type=int, default=4)
    args = parser.parse_args()
    frames, source = _frames(args.frames)
    load_before = os.getloadavg()[0]
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
              "python": platform.python_version(), "opencv": cv2.__version__, "input": source,
              "per_frame": per_frame_speed(frames),
              "workers": worker_speedup(args.subjects, args.clips_per_class)}
    # The machine is shared: the 1-minute load average says how many other runnable processes competed.
    result["load_average_1min"] = {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""Regenerate ``docs/img/predict_input_match.png``: do the images merkit makes from raw video look like the MEGC2019
composite's images, on which the packaged model ``megc2019-ststnet`` was trained?

Three sources of 28x28 u / v / strain images:

* **composite**: the 442 released flow PNGs (``../shared/data/megc2019-composite``, research-only data, read in
  place), each channel min-max stretched to 0..255 per image by its authors;
* **Pexels**: the Pexels video (``../shared/data/faces/WolfgangLanger_Pexels.mp4``, 640x360, 24 fps), one clip of
  12 frames (0.5 s, the spotting window) starting every 8 frames, apex spotted by merkit's apex rule, through
  :func:`merkit.inputs.clip_inputs` with the packaged model's preprocessing record;
* **synthetic**: merkit's synthetic release at ``merkit synth``'s default settings (5 subjects x 3 classes x 4 clips,
  seed 0; the demo's release), through :func:`merkit.inputs.build_inputs` with the same record.

merkit's images are quantised to 8 bits as the composite's are (:func:`merkit.inputs.composite.flow_to_rgb8`).
What is comparable: the composite's images are stretched per image and channel, so their absolute flow is gone. The
figure compares the distributions of the stretched values (pooled pixels, and each image's median: where zero motion
falls inside the stretched range), the mean stretched strain map (where on the face the motion sits, which shows
whether the crops frame the face alike), and, for merkit's images only, the values before the stretch (mean flow
magnitude in pixels of the 224 px crop, and the strain maximum). As a yardstick for "alike", it prints the 1-D
Wasserstein distance between the pooled stretched values of each pair of sources, beside the distance between the
composite's own parts (CASME II, SAMM, SMIC-HS), which were made by one recipe from three cameras.

The synthetic inputs are cached under ``~/.cache/merkit`` (``$MERKIT_CACHE``); the sim-to-real script reuses them.
About 4-6 minutes on a 2-core CPU the first time (TV-L1 at 224 px on about 120 clips), then about 2 minutes.

Run: ``python docs/scripts/input_match_figure.py [--data ../shared/data] [--out docs/img]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MERKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
CHANNELS = ("u", "v", "strain")
COLOURS = {"composite": "#444444", "Pexels": "#d95f02", "synthetic": "#1b9e77"}
CLIP_FRAMES, CLIP_EVERY = 12, 8


def quantise(flow: np.ndarray) -> np.ndarray:
    """(N, 3, S, S) stretched floats -> the same rounded to 8 bits and back to [0, 1], as the composite's PNGs."""
    from merkit.inputs.composite import flow_to_rgb8

    return np.stack([flow_to_rgb8(f).transpose(2, 0, 1) for f in flow]).astype(np.float32) / 255.0


def raw_maps(onset: np.ndarray, apex: np.ndarray, record) -> np.ndarray:
    """The record's onset->apex maps before the min-max stretch: (3, 28, 28) u, v in pixels of the crop, strain."""
    from merkit.motion.representations import onset_apex_flow

    m = record.motion
    return onset_apex_flow(onset, apex, m.size, "none", m.method, **m.flow_params)


def composite_images(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The composite's flow images (N, 3, 28, 28) in [0, 1] and each one's dataset name."""
    from merkit.inputs.composite import read_composite

    data = read_composite(root)
    return np.asarray(data.inputs["flow"]), data.table["dataset"].to_numpy()


def pexels_images(video: Path, record) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Stretched (clip_inputs with ``record``) and raw maps of the Pexels clips, (N, 3, 28, 28) each, and their
    aligned onset crops."""
    from merkit.face.landmarks import FaceNotFoundError
    from merkit.inputs.clip import clip_inputs
    from merkit.media import read_video

    frames = read_video(video)
    stretched, raw, crops = [], [], []
    for begin in range(0, len(frames) - CLIP_FRAMES + 1, CLIP_EVERY):
        numbers = frames.numbers[begin:begin + CLIP_FRAMES]
        try:
            result = clip_inputs(frames.frames[begin:begin + CLIP_FRAMES], numbers, record, onset=numbers[0],
                                 where=frames.where(numbers[0]), apex_rule="annotated-or-spot")
        except FaceNotFoundError:  # no face, or the face lost or moved too far: predict skips those too
            continue
        stretched.append(result.inputs["flow"])
        raw.append(raw_maps(result.crop(result.onset), result.crop(result.apex), record))
        crops.append(result.crop(result.onset))
    return quantise(np.stack(stretched)), np.stack(raw), crops


def synthetic_images(record) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Stretched and raw maps of the synthetic release (build_inputs, cached), and each clip's aligned onset crop."""
    from merkit.datasets import load_dataset
    from merkit.inputs.build import build_inputs, release_cache_dir

    root = synthetic_release()
    table = load_dataset("synthetic", root)
    cache = release_cache_dir(root)
    stretched = build_inputs(table, record, cache=cache)
    raw = build_inputs(table, dataclasses.replace(record, motion=dataclasses.replace(record.motion,
                                                                                     normalise="none")),
                       cache=cache)
    assert list(raw.table["sample_id"]) == list(stretched.table["sample_id"])
    crops = [onset_crop(row, record) for row in table.to_dict("records")]
    return quantise(np.asarray(stretched.inputs["flow"])), np.asarray(raw.inputs["flow"]), crops


def onset_crop(row: dict, record) -> np.ndarray:
    """The aligned crop of a sample's onset frame, fitted on it with ``record.face`` (as clip_inputs fits it)."""
    from merkit.face.clip import align_frames
    from merkit.media import frame_number, read_image_or_frame

    path = next(p for p in row["frames"] if frame_number(p) == int(row["onset"]))
    return align_frames([read_image_or_frame(path)], record.face).frames[0]


def framing(crops: list[np.ndarray]) -> np.ndarray:
    """dlib's 68 landmarks on each crop, in units of the crop's side: (N, 68, 2) (x, y); crops without a face are
    left out."""
    from merkit.face.landmarks import FaceNotFoundError, detect_landmarks

    shapes = []
    for crop in crops:
        try:
            points, _, _ = detect_landmarks(crop, "hog", upsample=1)
        except FaceNotFoundError:
            continue
        shapes.append(points / np.array([crop.shape[1], crop.shape[0]]))
    return np.stack(shapes)


def composite_crops(root: Path) -> list[np.ndarray]:
    """The composite's 224x224 grey apex crops (``apex/*.jpg``), the only face pixels it releases."""
    import cv2
    import pandas as pd

    manifest = pd.read_csv(root / "manifest.csv", dtype=str)
    return [cv2.imread(str(root / p), cv2.IMREAD_GRAYSCALE) for p in manifest["apex"]]


def framing_row(shapes: np.ndarray) -> dict[str, float]:
    """Median framing figures of (N, 68, 2) landmarks in units of the crop side."""
    eyes = np.stack([shapes[:, 36:42].mean(axis=1), shapes[:, 42:48].mean(axis=1)], axis=1)
    return {"inter-ocular distance": float(np.median(np.linalg.norm(eyes[:, 1] - eyes[:, 0], axis=1))),
            "eye line height": float(np.median(eyes[:, :, 1].mean(axis=1))),
            "mouth centre height": float(np.median(shapes[:, 48:68, 1].mean(axis=1))),
            "jaw width (points 0-16)": float(np.median(shapes[:, 16, 0] - shapes[:, 0, 0])),
            "chin height": float(np.median(shapes[:, 8, 1]))}


def synthetic_release() -> Path:
    """The demo's synthetic release (``merkit synth``'s defaults: 5 subjects, 4 clips per class, seed 0), cached."""
    from merkit.demo import cached_dataset
    from merkit.inputs.build import default_cache_dir

    cache = default_cache_dir() / "demo"
    cache.mkdir(parents=True, exist_ok=True)
    return cached_dataset(cache, subjects=5, clips_per_class=4, seed=0)


def wasserstein(a: np.ndarray, b: np.ndarray, channel: int) -> float:
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(a[:, channel].ravel(), b[:, channel].ravel()))


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from merkit.checkpoint import Checkpoint
    from merkit.files import write_atomic
    from merkit.pretrained import DEFAULT_MODEL, packaged_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = parser.parse_args()

    record = Checkpoint.load(packaged_model(DEFAULT_MODEL).path)[0].preprocessing
    composite, parts = composite_images(args.data / "megc2019-composite")
    pexels, pexels_raw, pexels_crops = pexels_images(args.data / "faces" / "WolfgangLanger_Pexels.mp4", record)
    synthetic, synthetic_raw, synthetic_crops = synthetic_images(record)
    shapes = {"composite": framing(composite_crops(args.data / "megc2019-composite")),
              "Pexels": framing(pexels_crops), "synthetic": framing(synthetic_crops)}
    sources = {"composite": composite, "Pexels": pexels, "synthetic": synthetic}
    raws = {"Pexels": pexels_raw, "synthetic": synthetic_raw}

    full = np.all((composite.min(axis=(2, 3)) == 0) & (composite.max(axis=(2, 3)) == 1), axis=1)
    print(f"composite: {full.sum()} of {len(composite)} images have every channel spanning exactly 0..255")
    print(f"images: composite {len(composite)}, Pexels {len(pexels)}, synthetic {len(synthetic)}")
    print("\n| stretched values | " + " | ".join(f"{c} mean ± std | {c} median per image" for c in CHANNELS) + " |")
    print("|---|" + "---|---|" * len(CHANNELS))
    for name, x in sources.items():
        cells = []
        for k in range(3):
            med = np.median(x[:, k].reshape(len(x), -1), axis=1)
            cells += [f"{x[:, k].mean():.3f} ± {x[:, k].std():.3f}", f"{np.median(med):.3f} (IQR "
                      f"{np.percentile(med, 25):.3f}-{np.percentile(med, 75):.3f})"]
        print(f"| {name} ({len(x)}) | " + " | ".join(cells) + " |")
    print("\n| Wasserstein distance of pooled stretched values | u | v | strain |\n|---|---|---|---|")
    pairs = [("composite", "Pexels"), ("composite", "synthetic"), ("Pexels", "synthetic")]
    for a, b in pairs:
        print(f"| {a} vs {b} | " + " | ".join(f"{wasserstein(sources[a], sources[b], k):.3f}" for k in range(3))
              + " |")
    names = {"casme2": "CASME II", "samm": "SAMM", "smic": "SMIC-HS"}
    for a, b in (("casme2", "samm"), ("casme2", "smic"), ("samm", "smic")):
        xa, xb = composite[parts == a], composite[parts == b]
        print(f"| composite {names[a]} vs {names[b]} | " + " | ".join(f"{wasserstein(xa, xb, k):.3f}"
                                                                    for k in range(3)) + " |")
    print("\n| framing, median in units of the crop side (faces found) | "
          + " | ".join(framing_row(shapes["composite"])) + " |\n|---|" + "---|" * 5)
    for name, points in shapes.items():
        print(f"| {name} ({len(points)}) | " + " | ".join(f"{v:.3f}" for v in framing_row(points).values()) + " |")
    print("\n| before the stretch (merkit only) | mean flow magnitude, px: median (IQR) | strain max: median (IQR) |"
          "\n|---|---|---|")
    for name, r in raws.items():
        mag = np.hypot(r[:, 0], r[:, 1]).mean(axis=(1, 2))
        smax = r[:, 2].max(axis=(1, 2))
        print(f"| {name} | {np.median(mag):.3f} ({np.percentile(mag, 25):.3f}-{np.percentile(mag, 75):.3f}) | "
              f"{np.median(smax):.3f} ({np.percentile(smax, 25):.3f}-{np.percentile(smax, 75):.3f}) |")

    fig = plt.figure(figsize=(13, 9.5))
    grid = fig.add_gridspec(3, 4, height_ratios=[1, 1, 1.05])
    bins = np.linspace(0, 1, 52)
    for k, channel in enumerate(CHANNELS):
        ax = fig.add_subplot(grid[0, k])
        for name, x in sources.items():
            ax.hist(x[:, k].ravel(), bins=bins, density=True, histtype="step", lw=1.6, color=COLOURS[name],
                    label=f"{name} ({len(x)})")
        ax.set(title=f"{channel}: pooled stretched values", xlabel="value after per-image min-max", yscale="log")
        if k == 0:
            ax.legend(fontsize=8)
        ax2 = fig.add_subplot(grid[1, k])
        meds = [np.median(x[:, k].reshape(len(x), -1), axis=1) for x in sources.values()]
        ax2.boxplot(meds, showfliers=False)
        ax2.set_xticks(range(1, len(sources) + 1), list(sources))
        for i, (name, m) in enumerate(zip(sources, meds)):
            jitter = np.random.default_rng(i).uniform(-0.18, 0.18, len(m))
            ax2.scatter(i + 1 + jitter, m, s=5, alpha=0.35, color=COLOURS[name])
        ax2.set(title=f"{channel}: median of each image", ylabel="stretched value", ylim=(0, 1))
    ax = fig.add_subplot(grid[0, 3])
    for name, r in raws.items():
        ax.hist(np.hypot(r[:, 0], r[:, 1]).mean(axis=(1, 2)), bins=np.geomspace(0.02, 50, 40), histtype="step",
                lw=1.6, color=COLOURS[name], label=name)
    ax.set(title="before the stretch: mean |flow|\n(composite: not recoverable)", xlabel="pixels of the 224 px crop",
           ylabel="images", xscale="log")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(grid[1, 3])
    for name, r in raws.items():
        ax.hist(r[:, 2].max(axis=(1, 2)), bins=np.geomspace(0.02, 20, 40), histtype="step", lw=1.6,
                color=COLOURS[name], label=name)
    ax.set(title="before the stretch: strain maximum\n(composite: not recoverable)", xlabel="strain (unitless)",
           ylabel="images", xscale="log")
    for i, (name, x) in enumerate(sources.items()):
        ax = fig.add_subplot(grid[2, i])
        ax.imshow(x[:, 2].mean(axis=0), cmap="magma", vmin=0, vmax=None)
        ax.set(title=f"{name}: mean stretched strain", xticks=[], yticks=[])
    ax = fig.add_subplot(grid[2, 3])
    for name, points in shapes.items():
        mean = np.median(points, axis=0)
        ax.scatter(mean[:, 0], mean[:, 1], s=7, color=COLOURS[name], label=f"{name} ({len(points)})")
    ax.set(title="face framing: median landmarks\n(composite: its 224 px apex crops)", xlim=(0, 1), ylim=(1, 0),
           aspect="equal", xlabel="x / crop side", ylabel="y / crop side")
    ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Inputs of {DEFAULT_MODEL}: the composite's training images vs the images its record makes from "
                 "raw video (8-bit, 28x28)", fontsize=10)
    fig.tight_layout()
    out = args.out / "predict_input_match.png"
    write_atomic(out, lambda p: fig.savefig(p, dpi=110))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()

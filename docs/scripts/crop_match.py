"""Which of merkit's face crops makes the image the MEGC2019 composite released for the same sample: measured on the
one composite sample whose source frames ``../shared/data`` holds.

``flow-golden/casme2-10frames/001.jpg``-``010.jpg`` are ten frames of CASME II ``sub01/EP02_01f`` (cropped release,
280x340 grey, temporally interpolated to 10 frames). The script first shows which sample they are: each frame,
resized to 224x224, against the composite's apex crops of subject sub01 (Pearson r of the grey levels). Then, for
each crop of :data:`CROPS`, it runs :func:`merkit.inputs.clip.clip_inputs` (what ``merkit export-flow`` and
``merkit predict`` run) with the packaged model's record, only the crop changed, from frame 001 (the onset) to the
apex frame (``--apex``, default 004: the annotated apex, 59 of onset 46 and offset 86, falls at interpolated frame
1 + 9 * 13/40 = 3.9, and 004 is also the frame the composite's apex crop matches best). It compares what the export
would write with what the composite released for ``casme2_sub01_EP02_01f``:

* the 28x28 flow image, quantised to 8 bits like the export's PNG: Pearson r per channel (u, v, strain) and the
  mean absolute difference over the three channels, in 8-bit levels;
* the 224x224 grey apex crop: Pearson r and mean absolute difference.

The row "no face fit" is not one of merkit's crops: it is the whole interpolated frame resized to 224x224 (the
CASME II cropped release frame itself), which is what the composite's apex crops of CASME II look like (r 0.997).
A second table repeats the flow's r for apex frames 003-005.

One sample of one part: SAMM and SMIC frames are not in ``../shared/data``. The frames are interpolated and already
cropped by the dataset's authors, so a crop reaching past them meets black borders, as it does not on raw frames.

Run: ``python docs/scripts/crop_match.py [--data ../shared/data] [--apex 4]`` (about 30 s on a loaded 2-core
CPU). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
SAMPLE = "casme2_sub01_EP02_01f"
#: (crop, margin): the packaged record's crop first, then merkit's other crops; slstt ignores the margin.
CROPS: tuple[tuple[str, float], ...] = (("landmarks", 0.0), ("landmarks", 0.1), ("slstt", 0.1), ("eyes", 0.1))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.asarray(a, float).ravel(), np.asarray(b, float).ravel())[0, 1])


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, float) - np.asarray(b, float)).mean())


def squashed(frame: np.ndarray, side: int = 224) -> np.ndarray:
    """The whole frame as grey uint8, resized to side x side (area interpolation)."""
    return cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (side, side), interpolation=cv2.INTER_AREA)


def exported(frames: list[np.ndarray], record, apex: int) -> tuple[np.ndarray, np.ndarray]:
    """What ``merkit export-flow`` writes for the clip: the 8-bit (28, 28, 3) u/v/strain image and the grey apex
    crop (frames numbered 1..10, onset 1, offset 10)."""
    from merkit.inputs.clip import clip_inputs
    from merkit.inputs.composite import flow_to_rgb8

    result = clip_inputs(frames, list(range(1, len(frames) + 1)), record, onset=1, apex=apex, offset=len(frames))
    return flow_to_rgb8(result.inputs["flow"]), result.crop(apex)


def unfitted(frames: list[np.ndarray], record, apex: int) -> tuple[np.ndarray, np.ndarray]:
    """The same from the whole frames resized to 224x224, without any face fit."""
    from merkit.inputs.composite import flow_to_rgb8
    from merkit.motion.representations import onset_apex_flow

    m = record.motion
    onset, top = squashed(frames[0]), squashed(frames[apex - 1])
    flow = onset_apex_flow(onset, top, size=m.size, normalise=m.normalise, method=m.method, **m.flow_params)
    return flow_to_rgb8(flow), top


def main() -> None:
    from merkit.config import load_config
    from merkit.media import read_8bit_image, read_frame

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--apex", type=int, default=4, help="the interpolated frame taken as the apex (1-10)")
    args = parser.parse_args()

    golden = args.data / "flow-golden" / "casme2-10frames"
    composite = args.data / "megc2019-composite"
    frames = [read_frame(golden / f"{i:03d}.jpg") for i in range(1, 11)]
    flow_ref = read_8bit_image(composite / "flow" / f"{SAMPLE}.png")  # RGB = u, v, strain
    apex_ref = read_8bit_image(composite / "apex" / f"{SAMPLE}.jpg", grey=True)
    record = load_config("megc2019/ststnet").data.preprocessing  # the packaged model's record

    print("| golden frame, resized to 224 px | " + " | ".join(f"r with sub01/{s}" for s in
                                                             ("EP02_01f", "EP19_05f", "EP19_06f")) + " |")
    print("|---|---|---|---|")
    for i, frame in enumerate(frames, 1):
        cells = [pearson(squashed(frame), read_8bit_image(composite / "apex" / f"casme2_sub01_{s}.jpg", grey=True))
                 for s in ("EP02_01f", "EP19_05f", "EP19_06f")]
        print(f"| {i:03d} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")

    variants = {f"{crop}, margin {margin}": dataclasses.replace(
        record, face=dataclasses.replace(record.face, crop=crop, margin=margin)) for crop, margin in CROPS}
    print(f"\n| crop (apex frame {args.apex:03d}) | flow r: u | v | strain | flow MAD (8-bit) | apex crop r "
          "| apex MAD |")
    print("|---|---|---|---|---|---|---|")
    rows = {name: exported(frames, rec, args.apex) for name, rec in variants.items()}
    rows["no face fit: the whole frame at 224x224"] = unfitted(frames, record, args.apex)
    for name, (flow, apex) in rows.items():
        r = [pearson(flow[..., c], flow_ref[..., c]) for c in range(3)]
        print(f"| {name} | {r[0]:.3f} | {r[1]:.3f} | {r[2]:.3f} | {mad(flow, flow_ref):.1f} | "
              f"{pearson(apex, apex_ref):.3f} | {mad(apex, apex_ref):.1f} |")

    print("\n| crop | flow r (u / v), apex 003 | apex 004 | apex 005 |")
    print("|---|---|---|---|")
    for name, rec in {**variants, "no face fit: the whole frame at 224x224": None}.items():
        cells = []
        for apex in (3, 4, 5):
            flow, _ = exported(frames, rec, apex) if rec is not None else unfitted(frames, record, apex)
            cells.append(" / ".join(f"{pearson(flow[..., c], flow_ref[..., c]):.3f}" for c in range(2)))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

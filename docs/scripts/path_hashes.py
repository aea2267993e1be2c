"""Hashes of what each entry point produces from raw clips, to show that a refactoring changed no output.

Runs the user-facing commands on one fixed small synthetic release and hashes their outputs:

* ``merkit demo`` (its predictions);
* ``merkit evaluate`` with ``data.kind: raw`` for STSTNet and for MMNet (their predictions);
* ``merkit export-flow`` (every image, the manifest and the provenance table);
* ``merkit train`` on the raw release (the weights), then ``merkit predict`` on the Pexels video, one clip and
  ``--spot`` (the JSON records without their timings, and the intervals).

Usage::

    python docs/scripts/path_hashes.py --write hashes.json    # record
    python docs/scripts/path_hashes.py --check hashes.json    # compare; exit 1 on any difference

Hashes are of floating-point results, so they hold on one machine and software stack; compare runs made on the
same host. The evaluate, train and predict runs give every setting that matters explicitly, so that a change of a
default does not show up there; ``merkit export-flow`` runs with its defaults (the composite's recipe), and
``merkit demo`` with its own (``merkit.demo.DEMO_FACE``, ``DEMO_MOTION``), so a change of those does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PEXELS = REPO.parent / "shared" / "data" / "faces" / "WolfgangLanger_Pexels.mp4"

FAST_TVL1 = {"nscales": 3, "warps": 2, "epsilon": 0.02}

STSTNET_RAW = f"""
name: hashes-ststnet-raw
data:
  kind: raw
  dataset: synthetic
  scheme: megc2019-3class
  face: {{crop: slstt, size: 128, color: grey, upsample: 0}}
  motion: {{representations: [onset_apex_flow], size: 28, flow_params: {json.dumps(FAST_TVL1)}}}
model: {{name: ststnet, preset: cpu}}
training: {{epochs: 3, batch_size: 8}}
protocol: {{selection: last, seeds: [0], workers: 1, threads_per_fold: 1}}
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def sha_json(path: Path, drop: tuple[str, ...] = ("timing", "merkit_version")) -> str:
    record = json.loads(path.read_text())

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in drop}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return hashlib.sha256(json.dumps(clean(record), sort_keys=True).encode()).hexdigest()[:16]


def sha_tree(folder: Path, patterns: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for pattern in patterns:
        for path in sorted(folder.glob(pattern)):
            digest.update(f"{path.relative_to(folder)}\0".encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def run(*args: str, cwd: Path, env: dict) -> None:
    print("+", " ".join(args), flush=True)
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def record(work: Path) -> dict[str, str]:
    env = {**os.environ, "MERKIT_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
    merkit = str(Path(sys.executable).with_name("merkit"))
    out: dict[str, str] = {}

    run(merkit, "demo", "--out", str(work / "demo"), "--cache", str(work / "demo-cache"), "--subjects", "3",
        "--clips-per-class", "2", "--epochs", "3", "--quiet", cwd=work, env=env)
    out["demo predictions.csv"] = sha(work / "demo" / "ststnet" / "predictions.csv")

    release = work / "release"
    run(merkit, "synth", str(release), "--subjects", "3", "--clips-per-class", "2", "--seed", "0", cwd=work, env=env)

    (work / "ststnet-raw.yaml").write_text(STSTNET_RAW)
    run(merkit, "evaluate", "--config", str(work / "ststnet-raw.yaml"), "--data", str(release), "--out",
        str(work / "ststnet-raw"), "--quiet", cwd=work, env=env)
    out["evaluate raw ststnet predictions.csv"] = sha(work / "ststnet-raw" / "predictions.csv")

    run(merkit, "evaluate", "--config", str(REPO / "configs" / "synthetic" / "mmnet.yaml"), "--data", str(release),
        "--out", str(work / "mmnet-raw"), "--set", "training.epochs=2", "--quiet", cwd=work, env=env)
    out["evaluate raw mmnet predictions.csv"] = sha(work / "mmnet-raw" / "predictions.csv")

    export = work / "export"
    run(merkit, "export-flow", "synthetic", "--data", str(release), "--out", str(export), cwd=work, env=env)
    out["export-flow images"] = sha_tree(export, ("flow/*.png", "apex/*.jpg"))
    out["export-flow manifest.csv"] = sha(export / "manifest.csv")
    out["export-flow provenance.csv"] = sha(export / "provenance.csv")

    ckpt = work / "ckpt"
    run(merkit, "train", "--config", str(work / "ststnet-raw.yaml"), "--data", str(release), "--out", str(ckpt),
        cwd=work, env=env)
    out["train model.safetensors"] = sha(ckpt / "model.safetensors")
    if PEXELS.is_file():
        run(merkit, "predict", str(PEXELS), "--checkpoint", str(ckpt), "--onset", "390", "--offset", "400", "--out",
            str(work / "clip"), "--no-figure", cwd=work, env=env)
        out["predict clip prediction.json"] = sha_json(work / "clip" / "prediction.json")
        run(merkit, "predict", str(PEXELS), "--checkpoint", str(ckpt), "--spot", "--first", "300", "--last", "420",
            "--out", str(work / "spot"), "--no-figure", cwd=work, env=env)
        out["predict spot intervals.csv"] = sha(work / "spot" / "intervals.csv")
        out["predict spot spot.json"] = sha_json(work / "spot" / "spot.json")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="record the hashes into this JSON file")
    group.add_argument("--check", type=Path, help="compare with the hashes in this JSON file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="merkit-hashes-") as tmp:
        hashes = record(Path(tmp))
    if args.write:
        args.write.write_text(json.dumps(hashes, indent=1) + "\n")
        print(json.dumps(hashes, indent=1))
        return
    expected = json.loads(args.check.read_text())
    bad = [k for k in sorted(set(expected) | set(hashes)) if expected.get(k) != hashes.get(k)]
    for key in sorted(set(expected) | set(hashes)):
        print(f"{'OK  ' if key not in bad else 'DIFF'} {key}: {expected.get(key)} -> {hashes.get(key)}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

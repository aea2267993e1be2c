"""``merkit demo``: the whole pipeline on synthetic micro-expressions, in about a minute on a laptop CPU.

Steps: generate a small synthetic CASME II-layout dataset from the astronaut photo
(:mod:`merkit.datasets.synthetic`), compute onset->apex TV-L1 flow and optical strain on a face crop
(:mod:`merkit.pipeline`), and run leave-one-subject-out evaluation over the pseudo-subjects with each demo model
(:func:`merkit.api.evaluate`). The dataset and its flow images are cached (``~/.cache/merkit/demo`` unless
``cache_dir`` or ``$MERKIT_CACHE`` says otherwise), and a finished LOSO run in ``out_dir`` is reused, so a second
run takes seconds.

The configuration is built here, in code, so that the demo works from an installed package without the
repository's ``configs/`` folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from merkit.config import DataConfig, ModelConfig, ProtocolConfig, RunConfig, TrainConfig, default_cache_dir
from merkit.face.clip import FaceConfig

DEMO_MODELS: tuple[str, ...] = ("ststnet",)
# TV-L1 with 3 pyramid levels, 2 warps and a looser stopping threshold: about 4x faster than OpenCV's defaults
# and, on the synthetic clips, at least as accurate for LOSO (measured with the learnability test's set).
FAST_TVL1: dict = {"nscales": 3, "warps": 2, "epsilon": 0.02}
# How the demo turns clips into STSTNet inputs (keyword arguments of merkit.pipeline.build_flow_features). A 160 px
# crop keeps the 0.5-3 px expressions at about 0.35-2 px; at 112-128 px the smallest ones drown in the noise. The
# synthetic faces are about 224 px wide, so dlib finds them without upsampling.
FLOW_SETTINGS: dict = {"size": 28, "face": FaceConfig(size=160, color="grey", upsample=0), **FAST_TVL1}
SCHEME = "megc2019-3class"


def demo_config(model: str = "ststnet", epochs: int = 60, seed: int = 0) -> RunConfig:
    """The demo's run config: ``model``'s CPU preset, a fixed number of epochs, last-epoch (honest) selection."""
    return RunConfig(
        name=f"demo-{model}",
        data=DataConfig(kind="synthetic", scheme=SCHEME),
        model=ModelConfig(name=model, preset="cpu"),
        training=TrainConfig(epochs=epochs, batch_size=16, lr=1e-3),
        protocol=ProtocolConfig(selection="last", seeds=[seed], save_checkpoints=False),
    ).validate()


def _key(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def cached_dataset(cache_dir: Path, subjects: int, clips_per_class: int, seed: int,
                   log: Callable[[str], None] = print) -> Path:
    """Generate the demo dataset into ``cache_dir`` unless it is already there; return its folder.

    A dataset is written to a temporary folder and renamed when complete, so an interrupted run never leaves
    a half-written dataset that a later run would take for finished.
    """
    from merkit.datasets.synthetic import GENERATOR_VERSION, generate

    params = {"generator": GENERATOR_VERSION, "subjects": subjects, "clips_per_class": clips_per_class, "seed": seed}
    root = cache_dir / f"synthetic-{_key(params)}"
    if (root / "samples.csv").is_file():
        log(f"synthetic dataset: cached in {root}")
        return root
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"synthetic dataset: generating {subjects} subjects x 3 classes x {clips_per_class} clips into {root}")
    generate(tmp, subjects=subjects, clips_per_class=clips_per_class, seed=seed)
    # samples.csv stores frame paths relative to the root, so the rename keeps the dataset valid
    os.replace(tmp, root)
    return root


def cached_features(root: Path, log: Callable[[str], None] = print):
    """The onset->apex flow FeatureSet of the dataset in ``root``, computed once and cached beside it."""
    import torch

    from merkit.datasets.schemes import get_scheme
    from merkit.datasets.synthetic import load_synthetic
    from merkit.errors import Diagnostics
    from merkit.features import FeatureSet
    from merkit.pipeline import FLOW_CHANNELS, build_flow_features
    from merkit.preprocessing import Preprocessing

    table = load_synthetic(root)
    settings = {**FLOW_SETTINGS, "face": FLOW_SETTINGS["face"].config_hash()}
    path = root / f"flow-{_key(settings)}.pt"
    if path.is_file():
        saved = torch.load(path)
        labelled = get_scheme(SCHEME).apply(table)
        if list(labelled["sample_id"]) == saved["sample_id"]:
            log(f"flow images: cached in {path}")
            return FeatureSet(labelled, {"flow": saved["flow"]}, get_scheme(SCHEME).classes, saved["notes"],
                              {"flow_channels": list(FLOW_CHANNELS), "diagnostics": saved["diagnostics"],
                               "preprocessing": Preprocessing.onset_apex_flow(**FLOW_SETTINGS).to_dict()})
    log(f"flow images: TV-L1 onset->apex flow and optical strain for {len(table)} clips")
    features = build_flow_features(table, SCHEME, diagnostics=Diagnostics(), **FLOW_SETTINGS)
    torch.save({"sample_id": list(features.table["sample_id"]), "flow": features.inputs["flow"],
                "notes": features.notes, "diagnostics": features.meta["diagnostics"]}, path)
    return features


@dataclass
class DemoResult:
    """What :func:`run_demo` produced."""

    dataset_dir: Path
    runs: dict = field(default_factory=dict)  # model name -> merkit.api.RunResult
    per_class: dict = field(default_factory=dict)  # model name -> DataFrame (class x precision/recall/f1/support)
    seconds: dict = field(default_factory=dict)

    @property
    def report_paths(self) -> dict[str, Path]:
        return {m: r.report_path for m, r in self.runs.items()}


def run_demo(out_dir: str | Path | None = None, cache_dir: str | Path | None = None, subjects: int = 5,
             clips_per_class: int = 4, seed: int = 0, epochs: int = 60, models: tuple[str, ...] = DEMO_MODELS,
             progress: bool = True, log: Callable[[str], None] = print) -> DemoResult:
    """Synthetic data -> flow -> LOSO for each demo model; reports in ``out_dir/<model>/report.md``.

    Args:
        out_dir: run folders go to ``out_dir/<model>`` (default ``./merkit-demo``); a finished run is reused.
        cache_dir: where the synthetic dataset and its flow images are cached (default :func:`default_cache_dir`).
        subjects, clips_per_class, seed: size and seed of the synthetic set
            (:func:`merkit.datasets.synthetic.generate`).
        epochs: fixed training epochs per fold.
        models: model names; each needs the ``flow`` input and a ``cpu`` preset.
        progress: show a progress bar during LOSO.
        log: receives one line per step.

    Returns:
        :class:`DemoResult` with each model's :class:`merkit.api.RunResult` and per-class table. Each run folder
        also gets ``per_class.csv``, and its ``report.md`` a per-class section.
    """
    from merkit.api import evaluate

    out = Path(out_dir) if out_dir is not None else Path("merkit-demo")
    cache = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "demo"
    cache.mkdir(parents=True, exist_ok=True)
    result = DemoResult(dataset_dir=Path())
    t0 = time.perf_counter()
    result.dataset_dir = cached_dataset(cache, subjects, clips_per_class, seed, log)
    t1 = time.perf_counter()
    features = cached_features(result.dataset_dir, log)
    t2 = time.perf_counter()
    result.seconds.update(dataset=t1 - t0, features=t2 - t1)
    for model in models:
        config = demo_config(model, epochs, seed)
        config.data.path = str(result.dataset_dir)
        log(f"LOSO: {model} over {features.table['subject_id'].nunique()} pseudo-subjects, {epochs} epochs per fold")
        run = evaluate(config, out / model, features=features, progress=progress)
        result.runs[model] = run
        result.per_class[model] = pd.DataFrame(run.metrics["per_class"]).T.rename_axis("class")
    result.seconds.update(loso=time.perf_counter() - t2, total=time.perf_counter() - t0)
    return result

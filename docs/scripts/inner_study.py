"""Compare candidate models on inner folds only: the choices of issue 32's pre-registered headline run.

    python docs/scripts/inner_study.py --data ../shared/data/megc2019-composite --out runs/inner-study \
        --candidate ststnet=megc2019/ststnet \
        --candidate ststnet-syn=megc2019/ststnet,model.init=runs/pretrain/ststnet \
        --outer-folds 6 --seeds 40,41,42 --workers 2

A candidate is ``NAME=CONFIG[,key=value,...]``: a config (a file or a shipped config's name) with overrides.
For each seed and each of ``--outer-folds`` LOSO folds (drawn once, with a fixed generator, from the folds of the
data), the outer fold's training subjects are split into ``--inner-folds`` subject-disjoint inner folds
(:func:`merkit.training.selection.inner_splits`, as inner selection splits them); each candidate is trained on
k - 1 of them and predicts the k-th, without and with the test-time flip. Every candidate of a (seed, fold) gets
the same inner splits and the same training seeds, so the comparisons are paired. The outer test subject's rows
are never handed to a task (each task receives ``data.subset(fold.train_index)`` and asserts it), so the study
reads no outer LOSO score: the rule under which issue 32 makes its choices.

Written under OUT (atomically, so a stopped study resumes with what it finished):

* ``probas/<seed>-<dataset>_<subject>-<candidate>.npz``: out-of-fold class probabilities of the fold's training rows
  (``none``, ``flip``), their ``sample_id`` and ``label``;
* ``summary.csv`` and the printed table: for each candidate, each equal-weight average of candidates named with
  ``--ensemble a+b``, and each test-time setting, the pooled inner UF1 and UAR of each (seed, fold), averaged,
  with their standard deviation and the number of (seed, fold) pairs it won against the first candidate.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from merkit.errors import ConfigError

TTAS = ("none", "flip")


def parse_candidate(text: str) -> tuple[str, str, list[str]]:
    """``NAME=CONFIG[,key=value,...]`` as ``(name, config, overrides)``."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise SystemExit(f"--candidate must be NAME=CONFIG[,key=value,...], got {text!r}")
    config, *overrides = rest.split(",")
    return name, config, overrides


def inner_task(recipe, train, test_ids: frozenset, seed: int, fold: str, k: int, flip: bool) -> dict:
    """Out-of-fold probabilities of one candidate on the inner folds of one outer fold's training rows (a Ray task:
    what it uses is imported here, so that the function travels without this script's module globals)."""
    import numpy as np
    import torch

    from merkit.errors import LeakageError
    from merkit.training.engine import fit, predict_proba
    from merkit.training.seeds import unit_seed
    from merkit.training.selection import inner_splits

    if test_ids & set(train.table["sample_id"]):
        raise LeakageError(f"the inner study of fold {fold} was handed outer test rows")
    torch.set_num_threads(1)
    ttas = ("none", "flip")
    out = {tta: np.zeros((len(train), len(train.classes)), dtype=np.float32) for tta in ttas}
    for j, (fit_rows, score_rows) in enumerate(inner_splits(train, k, unit_seed(seed, f"{fold}/inner"))):
        s = unit_seed(seed, f"{fold}/inner{j}")  # the same for every candidate: paired comparisons
        torch.manual_seed(s)
        model = recipe.model.build(len(train.classes))
        fit(model, train.subset(fit_rows), recipe.training, torch.Generator().manual_seed(s))
        scored = train.subset(score_rows)
        for tta in ttas if flip else ("none",):
            out[tta][score_rows] = predict_proba(model, scored, recipe.training.eval_batch_size, tta=tta)
    if not flip:
        out["flip"][:] = np.nan
    return {**out, "sample_id": train.table["sample_id"].to_numpy(str), "label": train.labels.numpy()}


def load_candidates(specs: list[str], data: Path):
    """Each candidate's resolved recipe and features (loaded once per distinct data section), and whether the
    test-time flip applies to it; all must hold the same samples in the same order."""
    from merkit.api import load_features
    from merkit.config import load_config
    from merkit.training.check import check_model_inputs

    candidates, features = {}, {}
    for text in specs:
        name, config, overrides = parse_candidate(text)
        cfg = load_config(config, overrides + [f"data.path={data}"])
        plan = cfg.resolve()
        key = repr(cfg.data)
        if key not in features:
            features[key] = load_features(cfg)
        check_model_inputs(plan.protocol.own.model, features[key])
        try:
            cfg.with_overrides(["protocol.tta=flip"]).validate()
            flip = True
        except ConfigError:
            flip = False
        candidates[name] = (plan.protocol.own, key, flip)
    ids = [tuple(f.table["sample_id"]) for f in features.values()]
    if any(i != ids[0] for i in ids):
        raise SystemExit("the candidates' data sections give different samples; they cannot be compared")
    return candidates, features


def probas_path(out: Path, seed: int, fold, candidate: str) -> Path:
    """``OUT/probas/<seed>-<fold>-<candidate>.npz`` (a fold's ``/`` written as ``_``)."""
    return out / "probas" / f"{seed}-{fold.name.replace('/', '_')}-{candidate}.npz"


def run(args) -> None:
    from merkit.cluster import executor
    from merkit.files import write_atomic
    from merkit.training.loso import make_folds

    candidates, features = load_candidates(args.candidate, args.data)
    table = next(iter(features.values())).table
    folds = make_folds(table, "loso")
    rng = np.random.default_rng(0)
    picked = sorted(rng.choice(len(folds), size=min(args.outer_folds, len(folds)), replace=False))
    folds = [folds[i] for i in picked]
    (args.out / "probas").mkdir(parents=True, exist_ok=True)
    todo = [(s, f, n) for s in args.seeds for f in folds for n in candidates
            if not probas_path(args.out, s, f, n).is_file()]
    print(f"outer folds: {', '.join(f.name for f in folds)}; {len(todo)} tasks to run", file=sys.stderr)

    def save(i: int, result: dict, node) -> None:
        s, f, n = todo[i]
        write_atomic(probas_path(args.out, s, f, n), lambda p: np.savez(p, **result))
        print(f"done {s}-{f.name}-{n}", file=sys.stderr, flush=True)

    calls = []
    for s, f, n in todo:
        recipe, key, flip = candidates[n]
        calls.append((recipe, features[key].subset(f.train_index), frozenset(table["sample_id"].iloc[f.test_index]),
                      s, f.name, args.inner_folds, flip))
    with executor(args.workers, None, args.workers, tasks=len(todo)) as ex:
        failures = ex.run(inner_task, calls, [f"{s}-{f.name}-{n}" for s, f, n in todo], save, max_retries=1)
    if failures:
        raise SystemExit(f"failed: {failures}")
    summarise(args, list(candidates), folds)


def summarise(args, names: list[str], folds) -> None:
    from merkit.evaluation.metrics import pooled_metrics

    rows = []
    entries = [(n, [n]) for n in names] + [(e, e.split("+")) for e in args.ensemble]
    for (label, members), tta in itertools.product(entries, TTAS):
        for s, f in itertools.product(args.seeds, folds):
            loaded = [np.load(probas_path(args.out, s, f, m)) for m in members]
            proba = np.mean([d[tta] for d in loaded], axis=0)
            if np.isnan(proba).any():
                break
            labels = loaded[0]["label"]
            m = pooled_metrics(labels, proba.argmax(1), proba.shape[1])
            rows.append({"candidate": label, "tta": tta, "seed": s, "fold": f.name, "uf1": m["uf1"],
                         "uar": m["uar"]})
    frame = pd.DataFrame(rows)
    base = frame[(frame.candidate == names[0]) & (frame.tta == "none")].set_index(["seed", "fold"])["uf1"]
    out = []
    for (label, tta), g in frame.groupby(["candidate", "tta"], sort=False):
        paired = g.set_index(["seed", "fold"])["uf1"] - base
        out.append({"candidate": label, "tta": tta, "pairs": len(g), "inner_uf1": g.uf1.mean(),
                    "uf1_std": g.uf1.std(ddof=1), "inner_uar": g.uar.mean(), "uar_std": g.uar.std(ddof=1),
                    "uf1_minus_first": paired.mean(), f"wins_over_{names[0]}": int((paired > 0).sum())})
    summary = pd.DataFrame(out).round(4)
    summary.to_csv(args.out / "summary.csv", index=False)
    frame.round(6).to_csv(args.out / "pairs.csv", index=False)
    print(summary.to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--candidate", action="append", required=True)
    parser.add_argument("--ensemble", action="append", default=[], help="a+b: the equal-weight mean of candidates")
    parser.add_argument("--outer-folds", type=int, default=6)
    parser.add_argument("--inner-folds", type=int, default=5)
    parser.add_argument("--seeds", type=lambda t: [int(x) for x in t.split(",")], default=[40, 41, 42])
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    for e in args.ensemble:
        unknown = [m for m in e.split("+") if m not in [parse_candidate(c)[0] for c in args.candidate]]
        if unknown:
            raise SystemExit(f"--ensemble {e}: unknown candidates {unknown}")
    run(args)


if __name__ == "__main__":
    main()

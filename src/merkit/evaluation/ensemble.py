"""Ensembles of finished runs: average class probabilities over runs, seeds or a run's last epochs, without
reading a label to do it.

* runs (default): for each seed, the mean of the runs' probabilities per sample; the runs must hold the same
  samples, folds, labels, classes and seeds (for example different models on the same data);
* ``collapse_seeds``: each run's probabilities are first averaged over its seeds, then over the runs; the result
  is one "seed" per sample, numbered as the first run's first seed;
* ``last_epochs`` K: each run's recorded per-epoch predictions (``protocol.record_epochs``) averaged over its last K
  epochs, per seed, before the runs are averaged.

The prediction is the arg-max of the mean. :func:`merkit.api.ensemble` writes the result as a normal run folder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from merkit.errors import ConfigError
from merkit.runfolder import RunFolder

KEYS = ("sample_id", "dataset", "subject", "subject_id", "sample", "fold", "label")


def _prob_columns(df: pd.DataFrame, where: Path) -> list[str]:
    columns = [c for c in df.columns if c.startswith("prob_")]
    if not columns:
        raise ConfigError(f"{where}: the predictions carry no prob_<class> columns")
    return columns


def _last_epochs(run: Path, k: int) -> pd.DataFrame:
    files = RunFolder(run).unit_files(RunFolder.EPOCHS)
    if not files:
        raise ConfigError(f"{run}: no recorded epochs to average (run it with --set protocol.record_epochs=true)")
    curves = pd.concat([pd.read_csv(f, dtype={"subject": str, "sample": str}) for f in files], ignore_index=True)
    last = int(curves["epoch"].max())
    if k > last:
        raise ConfigError(f"{run}: {k} last epochs asked for, the run recorded {last}")
    window = curves[curves["epoch"] > last - k]
    probs = _prob_columns(window, run)
    out = window.groupby(["seed", "sample_id"], sort=True).agg({**{c: "first" for c in KEYS if c != "sample_id"},
                                                                  **{p: "mean" for p in probs}})
    return out.reset_index().assign(epoch=last)


def _mean(frames: list[pd.DataFrame], probs: list[str], group: list[str]) -> pd.DataFrame:
    stacked = pd.concat(frames, ignore_index=True)
    out = stacked.groupby(group, sort=True).agg({**{c: "first" for c in KEYS if c not in group},
                                                 **{p: "mean" for p in probs}, "epoch": "max"})
    return out.reset_index()


def average_runs(runs: list[Path], collapse_seeds: bool = False, last_epochs: int | None = None) -> pd.DataFrame:
    """The averaged predictions table of ``runs`` (see the module docstring).

    Raises:
        ConfigError: a folder without predictions (or recorded epochs), or runs that do not hold the same samples
            with the same folds and labels, classes or (without ``collapse_seeds``) seeds; the message names them.
    """
    if not runs:
        raise ConfigError("name at least one run folder to average")
    frames = []
    for run in runs:
        path = RunFolder(run).file(RunFolder.PREDICTIONS)
        if not path.is_file():
            raise ConfigError(f"{path} not found: is {run} a finished merkit run?")
        frames.append(_last_epochs(run, last_epochs) if last_epochs else
                      pd.read_csv(path, dtype={"subject": str, "sample": str}))
    probs = _prob_columns(frames[0], runs[0])
    first = frames[0].drop_duplicates("sample_id").set_index("sample_id")[["fold", "label"]].sort_index()
    seeds = sorted(int(s) for s in frames[0]["seed"].unique())  # plain ints: messages print 0, not np.int64(0)
    for run, df in zip(runs[1:], frames[1:]):
        if _prob_columns(df, run) != probs:
            raise ConfigError(f"{run} predicts classes {_prob_columns(df, run)}, {runs[0]} predicts {probs}")
        other = df.drop_duplicates("sample_id").set_index("sample_id")[["fold", "label"]].sort_index()
        if not other.equals(first):
            raise ConfigError(f"{run} does not hold the samples, folds and labels of {runs[0]}: an ensemble averages "
                              "the same samples under the same folds")
        theirs = sorted(int(s) for s in df["seed"].unique())
        if not collapse_seeds and theirs != seeds:
            raise ConfigError(f"{run} has seeds {theirs}, {runs[0]} has {seeds}; pair runs with the same seeds, or "
                              "collapse the seeds (--collapse-seeds)")
    if collapse_seeds:
        frames = [_mean([df], probs, ["sample_id"]) for df in frames]
        out = _mean(frames, probs, ["sample_id"]).assign(seed=int(seeds[0]))
    else:
        out = _mean(frames, probs, ["seed", "sample_id"])
    out["prediction"] = out[probs].to_numpy().argmax(axis=1)
    columns = ["sample_id", "dataset", "subject", "subject_id", "sample", "fold", "seed", "epoch", "label",
               "prediction", *probs]
    return out[columns].sort_values(["seed", "sample_id"], kind="stable").reset_index(drop=True)

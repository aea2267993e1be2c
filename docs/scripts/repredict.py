"""Score a finished run's saved fold models again with another test-time setting or fewer ensemble members.

    python docs/scripts/repredict.py RUN --data PATH [--tta none|flip] [--members K] [--out CSV]

RUN is a ``merkit evaluate`` folder with ``checkpoints/`` (``protocol.save_checkpoints``, the default). For every
(seed, fold) unit the script rebuilds the run's model, loads the unit's weights (``member<k>.`` prefixes for
``protocol.ensemble`` > 1), predicts the fold's held-out rows with ``--tta`` and averages the first ``--members``
members. It prints UF1 and UAR pooled per seed, their mean and std, and writes nothing into RUN (``--out``: the
class probabilities, one row per seed and sample, columns as ``predictions.csv``'s ``sample_id``, ``seed``,
``prob_<class>``).

This is for saying, after a pre-registered run, what a part of it contributed (issue 32: "with what each part
contributed"), on the same trained models: the flip (``--tta none`` against the run's own ``flip``) and the seed
ensemble (``--members 1`` against all). It reads the outer test rows, as the run did; nothing it prints may be used
to change the run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="the data the run evaluated")
    parser.add_argument("--tta", choices=("none", "flip"), default=None, help="default: the run's own")
    parser.add_argument("--members", type=int, default=None, help="default: all of protocol.ensemble")
    parser.add_argument("--out", type=Path, default=None, help="a CSV of the class probabilities")
    args = parser.parse_args()

    from safetensors.torch import load_file

    from merkit.api import load_features
    from merkit.config import load_config
    from merkit.evaluation.metrics import pooled_metrics
    from merkit.runfolder import RunFolder
    from merkit.training.engine import predict_proba
    from merkit.training.loso import make_folds

    torch.set_num_threads(1)
    config = load_config(args.run / "config.yaml", [f"data.path={args.data}"])
    plan = config.resolve()
    p = plan.protocol
    if p.members or p.selection != "last":
        raise SystemExit("only runs of one model with protocol.selection: last are scored again here")
    tta = args.tta or p.tta
    members = args.members or p.ensemble
    if not 1 <= members <= p.ensemble:
        raise SystemExit(f"--members must be 1..{p.ensemble}")
    data = load_features(config)
    folder = RunFolder(args.run)
    rows = []
    for seed in p.seeds:
        for fold in make_folds(data.table, p.split, list(p.train_on), list(p.test_on)):
            path = folder.unit_file(RunFolder.CHECKPOINTS, seed, fold.slug)
            state = load_file(str(path))
            test = data.subset(fold.test_index)
            probas = []
            for k in range(members):
                prefix = f"member{k}." if p.ensemble > 1 else ""
                model = p.own.model.build(len(data.classes))
                model.load_state_dict({key[len(prefix):]: v for key, v in state.items() if key.startswith(prefix)})
                probas.append(predict_proba(model, test, p.own.training.eval_batch_size, tta=tta))
            proba = np.mean(probas, axis=0)
            rows += [{"sample_id": i, "seed": seed, "label": int(y), "pred": int(q.argmax()),
                      **{f"prob_{c}": float(v) for c, v in zip(data.classes, q)}}
                     for i, y, q in zip(test.table["sample_id"], test.labels.numpy(), proba)]
    frame = pd.DataFrame(rows)
    if args.out is not None:
        frame.drop(columns=["label", "pred"]).to_csv(args.out, index=False)
    scores = {s: pooled_metrics(g.label.to_numpy(), g.pred.to_numpy(), len(data.classes))
              for s, g in frame.groupby("seed")}
    for s, m in scores.items():
        print(f"seed {s}: UF1 {m['uf1']:.4f} UAR {m['uar']:.4f}")
    uf1, uar = [np.array([m[k] for m in scores.values()]) for k in ("uf1", "uar")]
    spread = lambda x: f" ± {x.std(ddof=1):.4f}" if len(x) > 1 else ""  # noqa: E731
    print(f"tta {tta}, {members} of {p.ensemble} members: UF1 {uf1.mean():.4f}{spread(uf1)} / "
          f"UAR {uar.mean():.4f}{spread(uar)}")


if __name__ == "__main__":
    main()

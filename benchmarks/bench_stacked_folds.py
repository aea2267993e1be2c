"""Would training a seed's fold models together be cheaper on the CPU? K models' steps, one after the other, against
one step of the K models stacked and mapped with ``torch.func.vmap`` (issue 32, part 6).

    python benchmarks/bench_stacked_folds.py [--model off_apexnet] [--channels 2] [--folds 8] [--steps 30]

Both sides run the same arithmetic on the same shapes: K independent models (``build_model(model, 3)``, MEB's
OFF-ApexNet by default), each fed its own batch of 32 random flow images (``channels`` x 28 x 28, float32) and
random labels, cross-entropy, then merkit's optimizer for MEB's recipe (:func:`merkit.training.engine.make_optimizer`:
Adam, lr 1e-4, weight decay 1e-3) with ``training.fused_optimizer``.

* separate: each model's step in turn (what K LOSO folds do, one after the other, on one thread);
* stacked: the K models' parameters stacked (``torch.func.stack_module_state``), the forward pass mapped over them
  (``torch.func.functional_call`` under ``vmap``, dropout drawn per model), the K losses summed (each model's
  gradient is its own loss's), one fused Adam over the stacked tensors, which is K Adams, element by element.

Prints the median time of one step of all K models for each side (median of ``--steps`` steps after 3 warm-up
steps), and their ratio. One thread, as a LOSO fold worker runs.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import statistics
import time

import torch
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F


def _median_step(step, steps: int) -> float:
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="off_apexnet")
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--folds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()

    from merkit.config import TrainConfig
    from merkit.models import build_model
    from merkit.training.engine import make_optimizer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    k = args.folds
    models = [build_model(args.model, 3) for _ in range(k)]
    flows = torch.rand(k, 32, args.channels, 28, 28)
    labels = torch.randint(0, 3, (k, 32))
    recipe = TrainConfig(optimizer="adam", lr=1e-4, weight_decay=1e-3, fused_optimizer=True)
    optimizers = [make_optimizer(m, recipe) for m in models]

    def separate() -> None:
        for model, optimizer, flow, label in zip(models, optimizers, flows, labels):
            loss = F.cross_entropy(model({"flow": flow}).logits, label)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    params, buffers = stack_module_state(models)
    params = {name: p.detach().requires_grad_() for name, p in params.items()}
    skeleton = copy.deepcopy(models[0]).to("meta")
    forward = vmap(lambda p, b, x: functional_call(skeleton, (p, b), ({"flow": x},)).logits, randomness="different")
    # the same optimizer class and settings over the stacked tensors (Adam is element-wise: K Adams in one)
    stacked_optimizer = type(optimizers[0])(list(params.values()), **optimizers[0].defaults)

    def stacked() -> None:
        logits = forward(params, buffers, flows)  # (K, 32, 3)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(k, -1).mean(1).sum()
        stacked_optimizer.zero_grad()
        loss.backward()
        stacked_optimizer.step()

    t_separate = _median_step(separate, args.steps)
    t_stacked = _median_step(stacked, args.steps)
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}, torch {torch.__version__}, 1 thread")
    print(f"{args.model}, K = {k} models, batch 32: separate {t_separate * 1e3:.1f} ms, stacked (vmap) "
          f"{t_stacked * 1e3:.1f} ms per step of all K; stacked / separate {t_stacked / t_separate:.2f}")


if __name__ == "__main__":
    main()

"""Fingerprints of every model's initial weights and forward numerics, to prove that a refactoring changed neither.

For each case (model, preset, parameter overrides) the model is built after ``torch.manual_seed(0)`` and fed fixed
seeded inputs; the fingerprint is three sha256 digests:

* ``names``: the state_dict's entries' names, dtypes and shapes in order (the same on every machine);
* ``state``: the state_dict, every entry's name, dtype, shape and bytes in state_dict order (so a renamed, reordered
  or differently initialised parameter or buffer changes it);
* ``eval``: the logits in eval mode on inputs of another size than the model's (so the resize paths run), with grey
  image inputs (so the grey -> RGB paths run);
* ``train``: the logits and the auxiliary losses of one training-mode forward pass with a seeded generator (dropout,
  drop path, batch statistics).

Uses only :func:`merkit.models.build_model`, so the same code runs against an older tree::

    PYTHONPATH=/path/to/other/src python -m tests.model_hashes     # prints the table to pin

The digests are of floating-point results: they hold on one machine and software stack (torch from
constraints.txt, one intra-op thread).
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import torch

#: (model, preset, params): every preset of every model, plus the switches whose code paths a refactoring of the
#: shared layers touches. ``forward=False`` cases are too slow to run forward on a 2-core CPU; their weights are
#: still fingerprinted.
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("ststnet", "paper", {}),
    ("ststnet", "cpu", {}),
    ("mmnet", "paper", {}),
    ("mmnet", "paper-3class", {}),
    ("mmnet", "cpu", {}),
    ("mmnet", "cpu", {"motion_key": "flow", "position_key": "apex", "pc_drop_path": 0.3, "pc_depth": 2}),
    ("mmnet", "cpu", {"pc": False, "attention": "xy", "continuous": False}),
    ("cva_fpf", "paper", {}),
    ("cva_fpf", "cpu", {}),
    ("cva_fpf", "cpu", {"motion_key": "flow", "fpf_backbone": "vit", "au_source": "annotation"}),
    ("cva_fpf", "cpu", {"fpf_frames": ["apex"], "attention": "spatial"}),
    ("slstt", "paper", {}),
    ("slstt", "cpu", {}),
    ("slstt", "cpu", {"aggregator": "mean", "input_key": "flow", "frames": 1}),
    ("htnet", "paper", {}),
    ("htnet", "cpu", {}),
    ("htnet", "cpu", {"regions": "fixed", "authors_axes": True}),
    ("htnet", "cpu", {"regions": "none", "levels": 2, "depths": [1, 2], "dropout": 0.1}),
    ("frl_dgt", "paper", {}),
    ("frl_dgt", "cpu", {}),
    ("frl_dgt", "cpu", {"displacement": "flow_norm", "frames": ["apex"], "fusion": "fu_a", "dropout": 0.1}),
    ("frl_dgt", "cpu", {"regions": "au-input", "self_supervised": True}),
    ("frl_dgt", "cpu", {"regions": "grid", "sequence": True, "sequence_length": 4, "image_channels": 1}),
    ("sssnet", "paper", {}),
    ("sssnet", "cpu", {}),
    ("sssnet", "paper", {"softmax_output": False}),
    ("off_apexnet", "paper", {}),
    ("off_apexnet", "cpu", {}),
    ("linear_svm", "paper", {}),
    ("linear_svm", "cpu", {}),
]

#: Cases whose forward pass takes too long for a unit test on a 2-core CPU (ViT-B/16 at 384 on 11 frames).
NO_FORWARD = {("slstt", "paper")}


def case_id(name: str, preset: str, params: dict[str, Any]) -> str:
    return "/".join([name, preset, *(f"{k}={v}" for k, v in sorted(params.items()))])


def _digest(tensors, values: bool = True) -> str:
    h = hashlib.sha256()
    for name, t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if values:
            h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def _side(config) -> int:
    for attr in ("input_size", "image_size"):
        if hasattr(config, attr):
            return int(getattr(config, attr))
    return 28


def make_inputs(model, seed: int, side: int, batch: int = 2) -> dict[str, torch.Tensor]:
    """Seeded inputs for every key of ``model.input_keys`` at image side ``side`` (grey where a model takes grey)."""
    g = torch.Generator().manual_seed(seed)
    config = model.config
    out: dict[str, torch.Tensor] = {}
    for key in model.input_keys:
        if key in ("flow", "dynamic_image"):
            out[key] = torch.rand(batch, getattr(config, "in_channels", 3), side, side, generator=g)
        elif key == "apex_minus_onset":
            out[key] = torch.rand(batch, 3, side, side, generator=g) * 2 - 1
        elif key in ("onset", "apex"):
            channels = 1 if key == "onset" or getattr(config, "image_channels", 3) == 1 else 3
            out[key] = torch.rand(batch, channels, side, side, generator=g)
        elif key == "face_points":
            from merkit.models.htnet import FIXED_POINTS

            out[key] = torch.tensor(FIXED_POINTS).expand(batch, -1, -1) + 0.05 * torch.randn(batch, 5, 2, generator=g)
        elif key == "au_boxes":
            centre = 0.3 + 0.4 * torch.rand(batch, 9, 2, generator=g)
            out[key] = torch.cat([centre - 0.1, centre + 0.1], dim=-1)
        elif key == "action_units":
            out[key] = (torch.rand(batch, config.au_dim, generator=g) > 0.7).float()
        elif key == "long_term_flow":
            out[key] = torch.rand(batch, config.frames, 3, side, side, generator=g)
        elif key == "clip":
            out[key] = torch.rand(batch, config.sequence_length, config.image_channels, side, side, generator=g)
        elif key in ("ss_onset", "ss_apex"):
            out[key] = torch.rand(batch, 2, config.image_channels, side, side, generator=g)
        else:
            raise KeyError(f"no test input for key {key!r}")
    return out


def fingerprint(name: str, preset: str, params: dict[str, Any], forward: bool = True) -> dict[str, str]:
    """``{"names", "state", "eval", "train": sha256 ("" when not computed)}`` of one case (see the module docstring);
    without ``forward`` (and for :data:`NO_FORWARD` cases) only the state_dict's."""
    from merkit.models import build_model

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SLSTT's "randomly initialised" warning
            model = build_model(name, 3, preset, **params)
        state = model.state_dict()
        result = {"names": _digest(state.items(), values=False), "state": _digest(state.items()), "eval": "",
                  "train": ""}
        if not forward or (name, preset) in NO_FORWARD:
            return result
        side = _side(model.config)
        exact = name == "ststnet"  # STSTNet's linear layer fixes its input size
        with torch.no_grad():
            logits = model.eval()(make_inputs(model, 1, side if exact else side + 4)).logits
            result["eval"] = _digest([("logits", logits)])
            torch.manual_seed(2)
            out = model.train()(make_inputs(model, 3, side if exact else side - 4))
            result["train"] = _digest([("logits", out.logits), *sorted(out.aux_losses.items())])
        return result
    finally:
        torch.set_num_threads(previous)


if __name__ == "__main__":
    import time

    for case in CASES:
        start = time.perf_counter()
        fp = fingerprint(*case)
        print(f"    {case_id(*case)!r}: {tuple(fp[k][:16] for k in ('names', 'state', 'eval', 'train'))!r},"
              f"  # {time.perf_counter() - start:.1f} s", flush=True)

"""Augmentation hooks: name -> function applied to each training batch's input mapping.

A hook has the signature ``hook(inputs, meta, generator) -> inputs`` where ``inputs`` is the ``{key: tensor}``
batch, ``meta`` the FeatureSet's metadata (e.g. ``meta["flow_channels"]``) and ``generator`` the fold's
:class:`torch.Generator`, so that augmentation is reproducible per (seed, fold). Hooks are listed by name in
``training.augment``.
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch

from merkit.errors import ConfigError

Hook = Callable[[dict[str, torch.Tensor], Mapping, torch.Generator], dict[str, torch.Tensor]]


def hflip_flow(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator) -> dict:
    """Mirror half of the flow images left-right, with the physics right: the horizontal flow u changes sign.

    Flow images are min-max stretched to [0, 1] per image, so negating u maps a value x to 1 - x. Strain and v
    are mirrored spatially only. Other image inputs of the same samples (``apex``, ``onset``) are mirrored too.
    """
    flow = inputs["flow"]
    flip = torch.rand(flow.shape[0], generator=generator) < 0.5
    if not flip.any():
        return inputs
    out = dict(inputs)
    f = flow.clone()
    f[flip] = f[flip].flip(-1)
    channels = list(meta.get("flow_channels", ("u", "v", "strain")))
    if "u" in channels:
        u = channels.index("u")
        f[flip, u] = 1.0 - f[flip, u]
    out["flow"] = f
    for key in ("apex", "onset"):
        if key in inputs:
            img = inputs[key].clone()
            img[flip] = img[flip].flip(-1)
            out[key] = img
    return out


AUGMENTATIONS: dict[str, Hook] = {"hflip_flow": hflip_flow}


def get_augmentations(names: list[str]) -> list[Hook]:
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"unknown augmentations {unknown}; known: {sorted(AUGMENTATIONS)}")
    return [AUGMENTATIONS[n] for n in names]

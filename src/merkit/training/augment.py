"""Augmentation hooks: name -> function applied to each training batch's input mapping.

A hook has the signature ``hook(inputs, meta, generator) -> inputs`` where ``inputs`` is the ``{key: tensor}``
batch, ``meta`` the FeatureSet's metadata (e.g. ``meta["flow_channels"]``) and ``generator`` the fold's
:class:`torch.Generator`, so that augmentation is reproducible per (seed, fold). Hooks are listed by name in
``training.augment``.

Every hook draws once per sample and applies that draw to every image key of the sample together (``flow``,
``apex_minus_onset``, ``onset``, ``apex``), so that the onset and apex frames, and therefore their difference,
move the same way (MMNet's code; CVA+FPF paper sec. 4.3). Inputs of different sizes (a 28 x 28 flow image and a
56 x 56 apex crop) get the same transform in relative coordinates.

* ``hflip``: mirror half of the samples; the horizontal flow u changes sign.
* ``rotate3``: rotation by up to 3 degrees (MMNet's ``RandomRotation(3)``).
* ``random_crop_pad15``: a random shift of up to 15/224 of the side (``RandomCrop(224, padding=15)``).

Departures: pixels that a transform brings in from outside the image repeat the border instead of torchvision's
zero fill, because zero means "strongest negative motion" in a min-max stretched flow image and "black" in a
[0, 1] face crop. Rotating a flow image rotates its pixels but not the (u, v) vectors; at <= 3 degrees the vector
error is below 5 %.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import torch
from torch.nn import functional as F

from merkit.errors import ConfigError

Hook = Callable[[dict[str, torch.Tensor], Mapping, torch.Generator], dict[str, torch.Tensor]]

IMAGE_KEYS = ("flow", "apex_minus_onset", "onset", "apex")


def _warp(inputs: dict[str, torch.Tensor], theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """Apply the (B, 2, 3) affine ``theta`` (normalised coordinates) to every image key of ``inputs``."""
    out = dict(inputs)
    for key in IMAGE_KEYS:
        if key in inputs:
            img = inputs[key]
            grid = F.affine_grid(theta.to(img.dtype), list(img.shape), align_corners=False)
            out[key] = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out


def _batch_size(inputs: Mapping[str, torch.Tensor]) -> int:
    for key in IMAGE_KEYS:
        if key in inputs:
            return inputs[key].shape[0]
    raise KeyError(f"image augmentation needs one of {IMAGE_KEYS}; got {sorted(inputs)}")


def rotate3(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator) -> dict:
    """Rotate each sample by an angle drawn uniformly from [-3, 3] degrees (``RandomRotation(3)``)."""
    n = _batch_size(inputs)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(3.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros(n)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    return _warp(inputs, theta)


def random_crop_pad15(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator) -> dict:
    """Shift each sample by an integer offset in [-15, 15] pixels at 224 (``RandomCrop(224, padding=15)``).

    At other sizes the shift is the same fraction of the side, rounded to whole pixels of the smallest image.
    """
    n = _batch_size(inputs)
    side = min(inputs[k].shape[-1] for k in IMAGE_KEYS if k in inputs)
    pad = max(1, round(15 * side / 224))
    shift = torch.randint(-pad, pad + 1, (n, 2), generator=generator).float() * (2.0 / side)
    eye = torch.eye(2).expand(n, 2, 2)
    theta = torch.cat([eye, shift[:, :, None]], dim=2)
    return _warp(inputs, theta)


def hflip(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator) -> dict:
    """Mirror half of the samples left-right, every image key, with the physics right for flow.

    Flow images are min-max stretched to [0, 1] per image, so negating u maps a value x to 1 - x; strain and v
    are mirrored spatially only. A difference image (``apex_minus_onset``) mirrors like an image.
    """
    flip = torch.rand(_batch_size(inputs), generator=generator) < 0.5
    if not flip.any():
        return inputs
    out = dict(inputs)
    for key in IMAGE_KEYS:
        if key in inputs:
            img = inputs[key].clone()
            img[flip] = img[flip].flip(-1)
            if key == "flow":
                channels = list(meta.get("flow_channels", ("u", "v", "strain")))
                if "u" in channels:
                    u = channels.index("u")
                    img[flip, u] = 1.0 - img[flip, u]
            out[key] = img
    return out


AUGMENTATIONS: dict[str, Hook] = {"hflip": hflip, "rotate3": rotate3, "random_crop_pad15": random_crop_pad15}


def get_augmentations(names: list[str]) -> list[Hook]:
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"unknown augmentations {unknown}; known: {sorted(AUGMENTATIONS)}")
    return [AUGMENTATIONS[n] for n in names]

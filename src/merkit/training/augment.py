"""Augmentation hooks: name -> function applied to each training batch's input mapping.

A hook has the signature ``hook(inputs, meta, generator) -> inputs`` where ``inputs`` is the ``{key: tensor}``
batch, ``meta`` the FeatureSet's metadata (e.g. ``meta["flow_channels"]``) and ``generator`` the fold's
:class:`torch.Generator`, so that augmentation is reproducible per (seed, fold). Hooks are listed by name in
``training.augment``. A hook's keyword-only arguments are its parameters, set per hook in
``training.augment_params`` (``{rotate: {degrees: 4}, random_crop: {padding: 4}}``; :func:`get_augmentations`
checks them when the config loads).

A hook may read inputs the model does not take: it lists them in an ``extra_keys`` attribute, and
:func:`merkit.training.engine.fit` then fetches them for training batches too. Evaluation runs no hook.

Every image hook draws once per sample and applies that draw to every image key of the sample together
(``flow``, ``apex_minus_onset``, ``onset``, ``apex``), so that the onset and apex frames, and therefore their
difference, move the same way (MMNet's code; CVA+FPF paper sec. 4.3). Inputs of different sizes (a 28 x 28 flow
image and a 56 x 56 apex crop) get the same transform in relative coordinates.

* ``temporal_jitter``: draw the onset and the apex among the frames near the labelled ones, replace ``onset``,
  ``apex`` and ``apex_minus_onset``. Reads ``onset_window`` / ``apex_window`` / ``jitter_bounds`` (the motion
  stage's ``onset_apex_frames``). Which frames depends on ``data.motion.jitter_mode``: ``symmetric`` (the MMNet
  report: +-2 frames), ``inward`` or ``mmnet-3class`` (the authors' scripts).
* ``apex_jitter``: the same for the apex only, the onset stays labelled (FRL-DGT's "random frame near the apex").
* ``magnify``: linear Eulerian motion magnification of the apex by a random factor (FRL-DGT's MagNet
  augmentation, approximated; see :func:`magnify`). Reads ``onset`` and ``apex``.
* ``hflip``: mirror half of the samples; the horizontal flow u changes sign; ``au_boxes`` and ``face_points`` are
  mirrored with them.
* ``rotate`` (``degrees``, default 3): rotation by up to ``degrees`` (``RandomRotation(degrees)``); ``rotate3`` is
  ``rotate`` at 3 degrees (MMNet's ``CASME2_5.py``, CVA+FPF).
* ``random_crop`` (``padding``, default 15): a random shift of up to ``padding``/224 of the side
  (``RandomCrop(224, padding=padding)``); ``random_crop_pad15`` is ``random_crop`` at padding 15.
* ``color_jitter`` (``strength``, required): the same random brightness and contrast on the onset and apex
  crops, the difference recomputed (listed in the MMNet report, used by no author's code; see
  :func:`color_jitter`). Reads ``onset`` and ``apex``.

A temporal hook must come first in ``training.augment`` (:func:`get_augmentations` checks): it replaces the frames
with window frames that the image hooks before it would not have transformed.

Departures: pixels that a transform brings in from outside the image repeat the border instead of torchvision's
zero fill, because zero means "strongest negative motion" in a min-max stretched flow image and "black" in a
[0, 1] face crop. Rotating a flow image rotates its pixels but not the (u, v) vectors; at <= 4 degrees the vector
error is below 7 %. ``rotate`` and ``random_crop`` leave ``au_boxes`` and ``face_points`` where they are: at
padding 15 the face moves by at most 15/224 of the side (7 % of it), under a fifth of a box side.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Mapping

import torch
from torch.nn import functional as F

from merkit.config import AUGMENT_PARAMS, AUGMENT_REQUIRED, MIRROR_KEYS, check_augmentations
from merkit.config import TEMPORAL_HOOKS  # noqa: F401  re-exported: the temporal hooks' names

Hook = Callable[[dict[str, torch.Tensor], Mapping, torch.Generator], dict[str, torch.Tensor]]

IMAGE_KEYS = ("flow", "apex_minus_onset", "onset", "apex")
if set(MIRROR_KEYS) != {*IMAGE_KEYS, "au_boxes", "face_points"}:
    raise ImportError("merkit.config.MIRROR_KEYS must name exactly the inputs that mirror() mirrors")


def _warp(inputs: dict[str, torch.Tensor], theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """Apply the (B, 2, 3) affine ``theta`` (normalised coordinates) to every image key of ``inputs``."""
    out = dict(inputs)
    for key in IMAGE_KEYS:
        if key in inputs:
            img = inputs[key]
            grid = F.affine_grid(theta.to(device=img.device, dtype=img.dtype), list(img.shape), align_corners=False)
            out[key] = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out


def _batch_size(inputs: Mapping[str, torch.Tensor]) -> int:
    for key in IMAGE_KEYS:
        if key in inputs:
            return inputs[key].shape[0]
    raise KeyError(f"image augmentation needs one of {IMAGE_KEYS}; got {sorted(inputs)}")


def rotate(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator, *,
           degrees: float = 3.0) -> dict:
    """Rotate each sample by an angle drawn uniformly from [-degrees, degrees] (torchvision's
    ``RandomRotation(degrees)``; MMNet's ``CASME2_5.py``: 3, ``CASME2_3.py``: 4).

    Args:
        degrees: the largest rotation, degrees (``training.augment_params: {rotate: {degrees: 4}}``).
    """
    n = _batch_size(inputs)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros(n)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    return _warp(inputs, theta)


def rotate3(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator) -> dict:
    """:func:`rotate` by up to 3 degrees (``RandomRotation(3)``), the recipe of MMNet's ``CASME2_5.py`` and CVA+FPF."""
    return rotate(inputs, meta, generator, degrees=3.0)


def random_crop(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator, *,
                padding: int = 15) -> dict:
    """Shift each sample by an integer offset in [-padding, padding] pixels at 224 (torchvision's
    ``RandomCrop(224, padding=padding)``; MMNet's ``CASME2_5.py``: 15, ``CASME2_3.py``: 4).

    At other sizes the shift is the same fraction of the side, rounded to whole pixels of the smallest image, and
    at least one pixel.

    Args:
        padding: the largest shift in pixels of a 224 px image (``training.augment_params: {random_crop:
            {padding: 4}}``).
    """
    n = _batch_size(inputs)
    side = min(inputs[k].shape[-1] for k in IMAGE_KEYS if k in inputs)
    pad = max(1, round(padding * side / 224))
    shift = torch.randint(-pad, pad + 1, (n, 2), generator=generator).float() * (2.0 / side)
    eye = torch.eye(2).expand(n, 2, 2)
    theta = torch.cat([eye, shift[:, :, None]], dim=2)
    return _warp(inputs, theta)


def random_crop_pad15(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator) -> dict:
    """:func:`random_crop` with padding 15 (``RandomCrop(224, padding=15)``), as MMNet's ``CASME2_5.py``."""
    return random_crop(inputs, meta, generator, padding=15)


#: ITU-R 601 luma weights, torchvision's ``rgb_to_grayscale``; the contrast of ``color_jitter`` blends with this mean.
LUMA = (0.2989, 0.587, 0.114)


def _grey_mean(image: torch.Tensor) -> torch.Tensor:
    """Mean grey level per sample of (B, C, H, W) images, C = 1 or 3, shape (B, 1, 1, 1)."""
    if image.shape[1] == 3:
        image = sum(w * image[:, i:i + 1] for i, w in enumerate(LUMA))
    return image.mean(dim=(1, 2, 3), keepdim=True)


def color_jitter(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator, *,
                 strength: float = 0.0) -> dict:
    """Random brightness and contrast of the onset and apex crops, one draw per sample for both frames.

    The MMNet reproduction report (sec. 5.2) lists colour jitter ("颜色抖动") among its augmentations, with no
    strength; the authors' scripts (``CASME2_5.py``, ``CASME2_3.py``) and the CVA+FPF code use none. So this hook
    is off in every shipped config, and any strength is merkit's choice.

    Per sample, with ``s = strength`` and factors drawn uniformly from ``[max(0, 1 - s), 1 + s]`` (torchvision's
    ``ColorJitter(brightness=s, contrast=s)`` ranges), in this order:

        x' = clamp(b * x, 0, 1)                                  brightness, both frames
        x'' = clamp(c * x' + (1 - c) * mean(onset'), 0, 1)       contrast, both frames

    ``mean(onset')`` is the onset's mean grey level after the brightness step (:data:`LUMA` weights for RGB). The
    same factors and the same mean serve both frames, so a pixel that does not change between onset and apex
    stays unchanged, and ``apex_minus_onset`` is recomputed as ``apex - onset`` from the jittered frames (a
    brightness change applied to the difference itself would cancel; a contrast change would only rescale it).
    ``flow`` is left alone: its channels are motion, not colour.

    Args:
        strength: s >= 0 (``training.augment_params: {color_jitter: {strength: 0.2}}``); 0 returns the batch
            unchanged and draws nothing from ``generator``.

    Inputs: ``onset``, ``apex`` (B, C, H, W) in [0, 1], C = 1 or 3.

    Raises:
        ValueError: a negative strength.
        KeyError: ``onset`` or ``apex`` is missing (add ``onset_apex_frames`` to ``data.motion.representations``).
    """
    if strength < 0:
        raise ValueError(f"color_jitter strength must be >= 0, got {strength}")
    if strength == 0:
        return inputs
    missing = [k for k in ("onset", "apex") if k not in inputs]
    if missing:
        raise KeyError(f"color_jitter needs the inputs {missing}: add onset_apex_frames to "
                       "data.motion.representations")
    onset, apex = inputs["onset"], inputs["apex"]
    n = onset.shape[0]
    low, high = max(0.0, 1.0 - strength), 1.0 + strength
    factors = low + (high - low) * torch.rand(2, n, generator=generator)
    brightness, contrast = (f.to(device=onset.device, dtype=onset.dtype).view(n, 1, 1, 1) for f in factors)
    onset, apex = (onset * brightness).clamp(0, 1), (apex * brightness).clamp(0, 1)
    mean = _grey_mean(onset)
    out = dict(inputs)
    out["onset"] = (contrast * onset + (1 - contrast) * mean).clamp(0, 1)
    out["apex"] = (contrast * apex + (1 - contrast) * mean).clamp(0, 1)
    if "apex_minus_onset" in inputs:
        out["apex_minus_onset"] = out["apex"] - out["onset"]
    return out


def _mirror_order() -> list[int]:
    """Index of each AU region's mirror image (R1L <-> R1R, ...; R2, R4, R6 map to themselves)."""
    from merkit.face.regions import AU_REGION_NAMES

    names = list(AU_REGION_NAMES)
    swap = {"L": "R", "R": "L"}
    return [names.index(n[:-1] + swap[n[-1]]) if n[-1] in swap else i for i, n in enumerate(names)]


def hflip(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator) -> dict:
    """Mirror half of the samples left-right (one draw per sample from ``generator``), through :func:`mirror`."""
    flip = torch.rand(_batch_size(inputs), generator=generator) < 0.5
    if not flip.any():
        return inputs
    return mirror(inputs, meta, flip)


def mirror(inputs: dict[str, torch.Tensor], meta: Mapping, rows: torch.Tensor | None = None) -> dict:
    """Mirror the samples ``rows`` ((B,) bool; ``None``: every sample) left-right, every image key, with the physics
    right for flow; the other samples and the keys it does not know are returned as they are.

    Flow images are min-max stretched to [0, 1] per image, so negating u maps a value x to 1 - x; strain and v
    are mirrored spatially only (the channels come from ``meta["flow_channels"]``, default u, v, strain). A
    difference image (``apex_minus_onset``) mirrors like an image. ``au_boxes`` ((B, 9, 4), units of the side) are
    mirrored, ``x -> 1 - x``, and each L/R pair swapped, so that box R1L is still the one on the image's left, as
    the template boxes are. ``face_points`` ((B, 5, 2), units of the side) likewise: ``x -> 1 - x``, and the left
    and right points swapped. The ``hflip`` augmentation and ``protocol.tta: flip`` both mirror through here; the
    keys it mirrors are :data:`merkit.config.MIRROR_KEYS`.
    """
    flip = torch.ones(_batch_size(inputs), dtype=torch.bool) if rows is None else rows
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
    if "au_boxes" in inputs:
        boxes = inputs["au_boxes"].clone()
        mirrored = boxes[flip][:, _mirror_order()]
        boxes[flip] = torch.stack([1.0 - mirrored[..., 2], mirrored[..., 1], 1.0 - mirrored[..., 0],
                                   mirrored[..., 3]], dim=-1)
        out["au_boxes"] = boxes
    if "face_points" in inputs:
        from merkit.face.regions import FACE_POINT_MIRROR

        points = inputs["face_points"].clone()
        mirrored = points[flip][:, list(FACE_POINT_MIRROR)]
        points[flip] = torch.stack([1.0 - mirrored[..., 0], mirrored[..., 1]], dim=-1)
        out["face_points"] = points
    return out


def jitter_mode(meta: Mapping) -> str:
    """The jitter mode of the preprocessing record in a FeatureSet's ``meta`` (``symmetric`` when there is none)."""
    record = meta.get("preprocessing") or {}
    return (record.get("motion") or {}).get("jitter_mode", "symmetric")


def _uniform_index(low: torch.Tensor, high: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per sample, uniform over the inclusive ranges ``[low, high]`` (int64 (B,), on their device)."""
    u = torch.rand(low.shape[0], generator=generator).to(device=low.device, dtype=torch.float64)
    return torch.minimum(low + torch.floor(u * (high - low + 1)).long(), high)


def _jitter(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator, onset: bool,
            name: str) -> dict:
    """Replace onset / apex (and their difference) by frames drawn from the windows; see :func:`temporal_jitter`."""
    missing = [k for k in ("onset_window", "apex_window") if k not in inputs]
    if missing:
        raise KeyError(f"{name} needs the inputs {missing}: add onset_apex_frames to data.motion.representations")
    onset_window, apex_window = inputs["onset_window"], inputs["apex_window"]
    if onset_window.shape != apex_window.shape or onset_window.ndim != 5 or onset_window.shape[1] % 2 != 1:
        raise ValueError(f"{name}: onset_window and apex_window must both be (B, 2J+1, C, H, W), got "
                         f"{tuple(onset_window.shape)} and {tuple(apex_window.shape)}")
    n, width = onset_window.shape[:2]
    mode = jitter_mode(meta)
    if mode == "symmetric":  # the whole window: the draws of every merkit version before jitter modes
        rows = torch.arange(n)
        onset_at = (torch.randint(0, width, (n,), generator=generator) if onset
                    else torch.full((n,), width // 2, dtype=torch.long))
        apex_at = torch.randint(0, width, (n,), generator=generator)
    else:
        if "jitter_bounds" not in inputs:
            raise KeyError(f"{name} in jitter mode {mode!r} needs the input 'jitter_bounds' (onset_apex_frames)")
        bounds = inputs["jitter_bounds"].to(device=onset_window.device, dtype=torch.long)
        if bounds.shape != (n, 4):
            raise ValueError(f"{name}: jitter_bounds must be (B, 4), got {tuple(bounds.shape)}")
        rows = torch.arange(n, device=onset_window.device)
        onset_at = (_uniform_index(bounds[:, 0], bounds[:, 1], generator) if onset
                    else torch.full((n,), width // 2, dtype=torch.long, device=onset_window.device))
        apex_at = _uniform_index(bounds[:, 2], bounds[:, 3], generator)
    drawn_onset, drawn_apex = onset_window[rows, onset_at], apex_window[rows, apex_at]
    out = {k: v for k, v in inputs.items() if k not in ("onset_window", "apex_window", "jitter_bounds")}
    for key, value in (("onset", drawn_onset), ("apex", drawn_apex),
                       ("apex_minus_onset", drawn_apex - drawn_onset)):
        if key in inputs:
            out[key] = value
    return out


def temporal_jitter(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator) -> dict:
    """Train on an onset and an apex drawn near the labelled ones, independently per sample (MMNet).

    The jitter mode is the preprocessing record's ``motion.jitter_mode`` (``meta["preprocessing"]``;
    :func:`merkit.motion.representations.jitter_bounds`):

    * ``symmetric`` (default): for each sample a window index in [0, 2J] is drawn for the onset and one for the
      apex, uniformly (offsets in [-J, J] frames before clamping, see
      :func:`merkit.motion.representations.jitter_windows`). The MMNet reproduction report (sec. 5.2): one of
      "the four frames around" the labelled frames, J = 2.
    * ``inward`` and ``mmnet-3class``: the index is uniform over the sample's ``jitter_bounds`` range, the rule of
      the authors' ``CASME2_5.py`` (onset later, apex earlier, by up to 3.75 % of the onset-apex span) or
      ``CASME2_3.py``.

    The batch's ``onset`` and ``apex`` become the drawn window frames and ``apex_minus_onset`` becomes their
    difference ``apex - onset``, exactly as :func:`merkit.motion.representations.apex_minus_onset` computes it;
    keys the batch lacks are not added, and the window keys and ``jitter_bounds`` are dropped. Evaluation runs no
    hook, so the test subject's samples keep the labelled frames.

    Inputs: ``onset_window``, ``apex_window`` (B, 2J+1, C, H, W), index J the labelled frame; ``jitter_bounds``
    (B, 4) int64, read in the code-derived modes.

    Raises:
        KeyError: the window inputs are missing (the motion stage did not compute ``onset_apex_frames``).
        ValueError: the windows' or the bounds' shapes disagree.
    """
    return _jitter(inputs, meta, generator, onset=True, name="temporal_jitter")


def apex_jitter(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator) -> dict:
    """:func:`temporal_jitter` for the apex only; the onset stays the labelled frame.

    FRL-DGT (Zhai et al., CVPR 2023, sec. 3.3) selects "a frame before or after the original apex frame" at random
    when loading training data: this hook with ``data.motion.jitter: 1`` in the ``symmetric`` mode.
    """
    return _jitter(inputs, meta, generator, onset=False, name="apex_jitter")


#: ``magnify`` draws the magnification factor alpha per sample from this range: the apex's motion becomes
#: (1 + alpha) times the original, up to 3 times.
MAGNIFY_ALPHA = (0.0, 2.0)
#: Standard deviation of the spatial Gaussian low-pass, as a fraction of the image side (1 px at 56 px).
MAGNIFY_SIGMA = 1.0 / 56


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) images, sigma in pixels, borders replicated."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    out = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def magnify(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator) -> dict:
    """Magnify each training sample's onset -> apex motion by a random factor, linear Eulerian style.

    FRL-DGT (Zhai et al., CVPR 2023, sec. 3.3) augments its training pairs with MagNet (Oh et al., ECCV 2018) "as in
    [17]". MagNet's weights are not available offline, so merkit offers the linear Eulerian approximation of Wu et
    al. (SIGGRAPH 2012, eq. 1-4) on the two frames: for a small displacement delta,
    ``I(x + delta) ~ I(x) + delta * dI/dx``, so adding alpha times the temporal change moves the image by
    ``(1 + alpha) delta``. With two frames the temporal band-pass is the apex - onset difference itself:

        apex' = apex + alpha * G_sigma(apex - onset),     alpha ~ U(MAGNIFY_ALPHA), per sample

    ``G_sigma`` is a spatial Gaussian low-pass (sigma = :data:`MAGNIFY_SIGMA` of the side). It stands in for Wu et
    al.'s attenuation of fine spatial scales, where ``(1 + alpha) delta`` would exceed a fraction of the wavelength
    and the approximation turns into noise amplification.

    Deviations from the paper: linear Eulerian magnification, not the learned MagNet; applied on the fly per
    training sample with a random factor rather than as a fixed enlarged dataset. ``apex_minus_onset`` is recomputed
    when the batch has it; motion inputs that are not frames (``flow``) are left alone.

    Inputs: ``onset``, ``apex`` (B, C, H, W), float.

    Raises:
        KeyError: ``onset`` or ``apex`` is missing (add ``onset_apex_frames`` to ``data.motion.representations``).
    """
    missing = [k for k in ("onset", "apex") if k not in inputs]
    if missing:
        raise KeyError(f"magnify needs the inputs {missing}: add onset_apex_frames to data.motion.representations")
    onset, apex = inputs["onset"], inputs["apex"]
    low, high = MAGNIFY_ALPHA
    alpha = (low + (high - low) * torch.rand(apex.shape[0], generator=generator)).to(apex)
    change = _gaussian_blur(apex - onset, MAGNIFY_SIGMA * apex.shape[-1])
    out = dict(inputs)
    out["apex"] = apex + alpha.view(-1, 1, 1, 1) * change
    if "apex_minus_onset" in inputs:
        out["apex_minus_onset"] = out["apex"] - onset
    return out


magnify.extra_keys = ("onset", "apex")
color_jitter.extra_keys = ("onset", "apex")
color_jitter.required_params = ("strength",)
temporal_jitter.extra_keys = ("onset_window", "apex_window", "jitter_bounds")
apex_jitter.extra_keys = ("onset_window", "apex_window", "jitter_bounds")


AUGMENTATIONS: dict[str, Hook] = {"hflip": hflip, "rotate": rotate, "rotate3": rotate3, "random_crop": random_crop,
                                   "random_crop_pad15": random_crop_pad15, "color_jitter": color_jitter,
                                   "temporal_jitter": temporal_jitter, "apex_jitter": apex_jitter, "magnify": magnify}


def hook_parameters(hook: Hook) -> dict[str, Any]:
    """A hook's parameters and their defaults: its keyword-only arguments (``rotate``: ``{"degrees": 3.0}``)."""
    return {name: p.default for name, p in inspect.signature(hook).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _with_parameters(hook: Hook, params: Mapping[str, Any]) -> Hook:
    """``hook`` with its keyword parameters bound, keeping its name and ``extra_keys``."""
    def bound(inputs: dict[str, torch.Tensor], meta: Mapping, generator: torch.Generator) -> dict:
        return hook(inputs, meta, generator, **params)

    bound.__name__ = hook.__name__
    bound.__doc__ = hook.__doc__
    bound.extra_keys = getattr(hook, "extra_keys", ())
    bound.params = dict(params)
    return bound


def _table_of_hooks() -> dict[str, dict[str, type]]:
    """:data:`AUGMENTATIONS` as :data:`merkit.config.AUGMENT_PARAMS` describes them: name -> parameter types."""
    return {name: {k: type(v) for k, v in hook_parameters(hook).items()} for name, hook in AUGMENTATIONS.items()}


# merkit.config checks training.augment without importing this module; it must describe these hooks exactly.
if _table_of_hooks() != AUGMENT_PARAMS or AUGMENT_REQUIRED != {
        n: h.required_params for n, h in AUGMENTATIONS.items() if getattr(h, "required_params", ())}:
    raise ImportError("merkit.config.AUGMENT_PARAMS / AUGMENT_REQUIRED do not describe merkit.training.augment's "
                      "hooks: update them together")


def get_augmentations(names: list[str], params: Mapping[str, Mapping[str, Any]] | None = None) -> list[Hook]:
    """The hooks named in ``training.augment``, in order, with the parameters of ``training.augment_params``.

    Args:
        names: hook names from :data:`AUGMENTATIONS`.
        params: ``{hook name: {parameter: value}}``, keyword parameters of hooks in ``names``
            (:func:`hook_parameters`); a hook without an entry keeps its defaults, and is returned itself.

    Raises:
        ConfigError: an unknown name, or a temporal hook (``temporal_jitter``, ``apex_jitter``) that is not the
            first, or both of them; parameters for a hook that is not listed, an unknown parameter, a value that
            is not a non-negative number of the parameter's type, or a required parameter left out
            (``color_jitter``'s ``strength``).
    """
    checked = check_augmentations(names, params)  # the config's own check (merkit.config.AUGMENT_PARAMS)
    return [_with_parameters(AUGMENTATIONS[name], checked[name]) if name in checked else AUGMENTATIONS[name]
            for name in names]

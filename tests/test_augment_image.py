"""Image augmentation hooks with parameters (training.augment_params): rotate, random_crop, color_jitter."""

from __future__ import annotations

import math

import pytest
import torch

from merkit.config import load_config
from merkit.errors import ConfigError
from merkit.training.augment import (AUGMENTATIONS, color_jitter, get_augmentations, hook_parameters, random_crop,
                                     random_crop_pad15, rotate, rotate3)


def _frames(batch: int = 16, channels: int = 3, side: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    onset = 0.35 + 0.3 * torch.rand(batch, channels, side, side, generator=g)  # no clamp at strength 0.2
    apex = onset.clone()
    apex[..., 8:16, 8:16] += 0.1 * torch.rand(batch, channels, 8, 8, generator=g)  # motion in one patch only
    return {"onset": onset, "apex": apex, "apex_minus_onset": apex - onset,
            "flow": torch.rand(batch, 3, side, side, generator=g)}


def test_the_named_hooks_are_the_parametrised_ones_at_their_old_values():
    """rotate3 and random_crop_pad15 (the shipped configs) draw and warp exactly as rotate at 3 degrees and
    random_crop at padding 15, which are also the defaults."""
    inputs = _frames()
    for named, general, params in ((rotate3, rotate, {"degrees": 3.0}), (random_crop_pad15, random_crop,
                                                                          {"padding": 15})):
        a = named(inputs, {}, torch.Generator().manual_seed(1))
        b = general(inputs, {}, torch.Generator().manual_seed(1), **params)
        c = general(inputs, {}, torch.Generator().manual_seed(1))
        assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]) for k in inputs)
    assert hook_parameters(rotate) == {"degrees": 3.0, "order": 1} and hook_parameters(random_crop) == {"padding": 15}
    assert hook_parameters(rotate3) == {}


def test_random_crop_shifts_by_at_most_its_padding():
    """A one-pixel dot at the centre of a 224 px image moves by whole pixels, at most `padding` each way."""
    image = torch.zeros(200, 1, 224, 224)
    image[:, :, 112, 112] = 1.0
    for padding in (4, 15):
        out = random_crop({"apex": image}, {}, torch.Generator().manual_seed(0), padding=padding)["apex"]
        where = out.flatten(1).argmax(1)
        dy, dx = where // 224 - 112, where % 224 - 112
        assert dy.abs().max() == dx.abs().max() == padding  # 200 draws reach the largest shift
        assert len(set(dx.tolist())) == 2 * padding + 1


def test_rotate_turns_by_at_most_its_angle():
    """A thin horizontal bar through the centre turns by the drawn angle; its slope bounds the angle."""
    side = 201
    image = torch.zeros(300, 1, side, side)
    image[:, :, side // 2, 20:-20] = 1.0
    for degrees in (3.0, 4.0):
        out = rotate({"apex": image}, {}, torch.Generator().manual_seed(0), degrees=degrees)["apex"][:, 0]
        ys = torch.arange(side, dtype=torch.float32)
        left = (out[:, :, 30] * ys[None]).sum(1) / out[:, :, 30].sum(1)
        right = (out[:, :, side - 31] * ys[None]).sum(1) / out[:, :, side - 31].sum(1)
        angles = torch.rad2deg(torch.atan((right - left) / (side - 61))).abs()
        assert angles.max() <= degrees + 0.1 and angles.max() > degrees - 0.3


def test_color_jitter_at_zero_strength_is_a_no_op_bit_for_bit():
    inputs = _frames()
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    out = color_jitter(inputs, {}, g, strength=0.0)
    assert set(out) == set(inputs) and all(torch.equal(out[k], inputs[k]) for k in inputs)
    assert torch.equal(g.get_state(), state)  # nothing drawn: the later hooks' draws are unchanged too
    bound = get_augmentations(["color_jitter"], {"color_jitter": {"strength": 0}})[0]
    out = bound(inputs, {}, torch.Generator().manual_seed(0))
    assert all(torch.equal(out[k], inputs[k]) for k in inputs)


@pytest.mark.parametrize("channels", [1, 3])
def test_color_jitter_changes_both_frames_alike_and_recomputes_the_difference(channels):
    inputs = _frames(channels=channels)
    out = color_jitter(inputs, {}, torch.Generator().manual_seed(0), strength=0.2)
    assert not torch.equal(out["onset"], inputs["onset"]) and not torch.equal(out["apex"], inputs["apex"])
    assert torch.equal(out["apex_minus_onset"], out["apex"] - out["onset"])
    assert torch.equal(out["flow"], inputs["flow"])  # motion channels are not colours
    static = torch.ones(32, 32, dtype=torch.bool)
    static[8:16, 8:16] = False
    # one draw for both frames: where the face does not move, onset and apex stay equal (no clamp at these levels)
    assert torch.equal(out["apex"][..., static], out["onset"][..., static])
    # and the motion is scaled by brightness x contrast, the same factor on every channel and pixel of a sample
    ratio = out["apex_minus_onset"][..., 8:16, 8:16] / inputs["apex_minus_onset"][..., 8:16, 8:16]
    per_sample = ratio.flatten(1)
    torch.testing.assert_close(per_sample, per_sample[:, :1].expand_as(per_sample), rtol=1e-3, atol=1e-3)
    assert ((per_sample >= 0.8 ** 2 - 1e-3) & (per_sample <= 1.2 ** 2 + 1e-3)).all()
    assert per_sample[:, 0].std() > 0.01  # each sample has its own draw
    assert 0 <= out["onset"].min() and out["apex"].max() <= 1


def test_color_jitter_needs_both_frames_and_a_non_negative_strength():
    with pytest.raises(KeyError, match="onset_apex_frames"):
        color_jitter({"apex": torch.rand(2, 1, 4, 4)}, {}, torch.Generator(), strength=0.1)
    with pytest.raises(ValueError, match="strength"):
        color_jitter(_frames(), {}, torch.Generator(), strength=-0.1)
    assert AUGMENTATIONS["color_jitter"].extra_keys == ("onset", "apex")


def test_augment_params_bind_the_hooks_parameters():
    hooks = get_augmentations(["temporal_jitter", "hflip", "rotate", "random_crop"],
                              {"rotate": {"degrees": 4}, "random_crop": {"padding": 4}})
    assert hooks[1] is AUGMENTATIONS["hflip"]
    assert hooks[2].__name__ == "rotate" and hooks[2].params == {"degrees": 4.0}
    assert hooks[3].params == {"padding": 4} and isinstance(hooks[3].params["padding"], int)
    inputs = _frames()
    a = hooks[2](inputs, {}, torch.Generator().manual_seed(2))
    b = rotate(inputs, {}, torch.Generator().manual_seed(2), degrees=4.0)
    assert torch.equal(a["apex"], b["apex"])
    assert get_augmentations(["color_jitter"], {"color_jitter": {"strength": "0.2"}})[0].extra_keys == ("onset",
                                                                                                        "apex")
    assert math.isclose(get_augmentations(["color_jitter"], {"color_jitter": {"strength": "0.2"}})[0].params[
        "strength"], 0.2)


@pytest.mark.parametrize("augment, params, message", [
    (["rotate"], {"rotate": {"angle": 4}}, "unknown parameters"),
    (["rotate3"], {"rotate3": {"degrees": 4}}, "unknown parameters"),
    (["hflip"], {"rotate": {"degrees": 4}}, "does not list"),
    (["random_crop"], {"random_crop": {"padding": 4.5}}, "must be a int"),
    (["rotate"], {"rotate": {"degrees": True}}, "must be a float"),
    (["rotate"], {"rotate": {"degrees": -1}}, ">= 0"),
    (["rotate"], {"rotate": 4}, "must map"),
    (["color_jitter"], {}, "strength"),
])
def test_bad_augment_params_are_refused_when_the_config_loads(augment, params, message):
    with pytest.raises(ConfigError, match=message):
        get_augmentations(augment, params)
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"training.augment={augment}", f"training.augment_params={params}"])

"""Temporal jitter (training.augment: temporal_jitter, apex_jitter) and AU boxes under hflip."""

from __future__ import annotations

import pytest
import torch

from merkit.errors import ConfigError
from merkit.training.augment import apex_jitter, get_augmentations, hflip, temporal_jitter

J = 2


def _windows(batch: int = 64, side: int = 4, j: int = J) -> dict[str, torch.Tensor]:
    """Windows whose frame k holds the value k - J everywhere (onset) or 10 + k - J (apex), so a drawn frame
    tells its offset; the bounds are the symmetric mode's whole window."""
    offsets = torch.arange(-j, j + 1, dtype=torch.float32).view(1, -1, 1, 1, 1)
    onset_window = offsets.expand(batch, -1, 1, side, side).clone()
    apex_window = onset_window + 10.0
    return {"onset_window": onset_window, "apex_window": apex_window, "onset": onset_window[:, j].clone(),
            "apex": apex_window[:, j].clone(), "apex_minus_onset": (apex_window[:, j] - onset_window[:, j]).clone(),
            "jitter_bounds": torch.tensor([0, 2 * j, 0, 2 * j]).expand(batch, 4).clone()}


def _meta(mode: str) -> dict:
    return {"preprocessing": {"motion": {"jitter_mode": mode}}}


def test_temporal_jitter_draws_offsets_within_j_and_recomputes_the_difference():
    out = temporal_jitter(_windows(), {}, torch.Generator().manual_seed(0))
    assert "onset_window" not in out and "apex_window" not in out and "jitter_bounds" not in out
    onset_offset = out["onset"][:, 0, 0, 0]
    apex_offset = out["apex"][:, 0, 0, 0] - 10.0
    assert onset_offset.abs().max() <= J and apex_offset.abs().max() <= J
    assert len(set(onset_offset.tolist())) == 2 * J + 1  # 64 draws reach every offset
    assert not torch.equal(onset_offset, apex_offset)  # onset and apex are drawn independently
    torch.testing.assert_close(out["apex_minus_onset"], out["apex"] - out["onset"], rtol=0, atol=0)


def test_temporal_jitter_is_reproducible_per_generator_seed():
    a = temporal_jitter(_windows(), {}, torch.Generator().manual_seed(3))
    b = temporal_jitter(_windows(), {}, torch.Generator().manual_seed(3))
    c = temporal_jitter(_windows(), {}, torch.Generator().manual_seed(4))
    assert torch.equal(a["onset"], b["onset"]) and torch.equal(a["apex"], b["apex"])
    assert not torch.equal(a["onset"], c["onset"])


def test_temporal_jitter_only_replaces_keys_the_batch_holds():
    inputs = _windows()
    del inputs["apex"], inputs["onset"]
    out = temporal_jitter(inputs, {}, torch.Generator().manual_seed(0))
    assert set(out) == {"apex_minus_onset"}
    with pytest.raises(KeyError, match="onset_apex_frames"):
        temporal_jitter({"onset": inputs["apex_minus_onset"]}, {}, torch.Generator())


def test_apex_jitter_keeps_the_labelled_onset():
    out = apex_jitter(_windows(), {}, torch.Generator().manual_seed(0))
    assert (out["onset"] == 0).all()
    assert (out["apex"] - 10.0).abs().max() <= J and len(set(out["apex"][:, 0, 0, 0].tolist())) > 1
    torch.testing.assert_close(out["apex_minus_onset"], out["apex"] - out["onset"], rtol=0, atol=0)


def test_the_symmetric_mode_draws_as_before_jitter_modes_existed():
    """The default mode makes the same draws from the generator as the hook did before jitter modes, so runs
    that do not set jitter_mode are unchanged: here the draws are spelled out."""
    g = torch.Generator().manual_seed(5)
    onset_at = torch.randint(0, 2 * J + 1, (64,), generator=g)
    apex_at = torch.randint(0, 2 * J + 1, (64,), generator=g)
    for meta in ({}, _meta("symmetric")):
        out = temporal_jitter(_windows(), meta, torch.Generator().manual_seed(5))
        assert torch.equal(out["onset"][:, 0, 0, 0], (onset_at - J).float())
        assert torch.equal(out["apex"][:, 0, 0, 0], (apex_at - J + 10).float())


def _bounded(bounds: list[list[int]], j: int = 3) -> dict[str, torch.Tensor]:
    """Windows of half-width j for len(bounds) samples, each sample with its own bounds."""
    inputs = _windows(batch=len(bounds), j=j)
    inputs["jitter_bounds"] = torch.tensor(bounds)
    return inputs


@pytest.mark.parametrize("mode", ["inward", "mmnet-3class"])
def test_code_derived_modes_draw_only_within_each_samples_bounds_and_reach_each_end(mode):
    j = 3
    per_sample = [[3, 3, 3, 3], [3, 4, 2, 3], [3, 6, 1, 3], [3, 5, 3, 5], [3, 4, 1, 6]]
    bounds = per_sample * 80
    out = temporal_jitter(_bounded(bounds, j), _meta(mode), torch.Generator().manual_seed(0))
    onset_index = out["onset"][:, 0, 0, 0].long() + j
    apex_index = out["apex"][:, 0, 0, 0].long() - 10 + j
    b = torch.tensor(bounds)
    assert ((onset_index >= b[:, 0]) & (onset_index <= b[:, 1])).all()
    assert ((apex_index >= b[:, 2]) & (apex_index <= b[:, 3])).all()
    for i, (lo, hi, alo, ahi) in enumerate(per_sample):
        drawn_onset = set(onset_index[i::len(per_sample)].tolist())
        drawn_apex = set(apex_index[i::len(per_sample)].tolist())
        assert drawn_onset == set(range(lo, hi + 1)) and drawn_apex == set(range(alo, ahi + 1))
    assert (onset_index[0::5] == j).all() and (apex_index[0::5] == j).all()  # reach 0: the labelled frames
    torch.testing.assert_close(out["apex_minus_onset"], out["apex"] - out["onset"], rtol=0, atol=0)


def test_apex_jitter_honours_the_mode_and_keeps_the_labelled_onset():
    out = apex_jitter(_bounded([[3, 5, 1, 3]] * 50), _meta("inward"), torch.Generator().manual_seed(0))
    assert (out["onset"] == 0).all()
    assert set((out["apex"][:, 0, 0, 0] - 10).long().tolist()) == {-2, -1, 0}


def test_a_code_derived_mode_needs_the_bounds():
    inputs = _windows()
    del inputs["jitter_bounds"]
    with pytest.raises(KeyError, match="jitter_bounds"):
        temporal_jitter(inputs, _meta("inward"), torch.Generator())
    inputs["jitter_bounds"] = torch.zeros(3, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="jitter_bounds"):
        temporal_jitter(inputs, _meta("inward"), torch.Generator())


def test_a_temporal_hook_must_come_first_and_alone():
    assert get_augmentations(["temporal_jitter", "hflip"])[0] is temporal_jitter
    assert temporal_jitter.extra_keys == ("onset_window", "apex_window", "jitter_bounds")
    with pytest.raises(ConfigError, match="first"):
        get_augmentations(["hflip", "temporal_jitter"])
    with pytest.raises(ConfigError, match="first"):
        get_augmentations(["temporal_jitter", "apex_jitter"])


def test_hflip_mirrors_au_boxes_and_swaps_left_and_right_regions():
    from merkit.face.regions import AU_REGION_NAMES

    boxes = torch.rand(32, 9, 2) * 0.5
    boxes = torch.cat([boxes, boxes + 0.3], dim=-1)  # (left, top, right, bottom)
    image = torch.rand(32, 1, 8, 8)
    out = hflip({"apex": image, "au_boxes": boxes}, {}, torch.Generator().manual_seed(0))
    flipped = (out["apex"] != image).flatten(1).any(1)
    assert 0 < flipped.sum() < 32
    left, right = AU_REGION_NAMES.index("R1L"), AU_REGION_NAMES.index("R1R")
    centre = AU_REGION_NAMES.index("R4")
    f = flipped.nonzero()[0, 0]
    torch.testing.assert_close(out["au_boxes"][f, left], torch.stack(
        [1 - boxes[f, right, 2], boxes[f, right, 1], 1 - boxes[f, right, 0], boxes[f, right, 3]]))
    torch.testing.assert_close(out["au_boxes"][f, centre, 0], 1 - boxes[f, centre, 2])
    assert torch.equal(out["au_boxes"][~flipped], boxes[~flipped])

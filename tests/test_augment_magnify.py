"""``magnify``: linear Eulerian magnification of the onset -> apex motion (FRL-DGT's MagNet augmentation)."""

from __future__ import annotations

import pytest
import torch

from merkit.training import augment
from merkit.training.augment import get_augmentations, magnify

SIZE = 56


def _blob(centre_x: float) -> torch.Tensor:
    """(1, 1, S, S) smooth Gaussian blob (sigma 6 px) centred at (centre_x, S/2)."""
    ys, xs = torch.meshgrid(torch.arange(SIZE, dtype=torch.float64), torch.arange(SIZE, dtype=torch.float64),
                            indexing="ij")
    return torch.exp(-((xs - centre_x) ** 2 + (ys - SIZE / 2) ** 2) / (2 * 6.0**2))[None, None]


def _centroid_x(image: torch.Tensor) -> float:
    xs = torch.arange(SIZE, dtype=image.dtype)
    weights = image[0, 0]
    return float((weights.sum(0) * xs).sum() / weights.sum())


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_magnify_scales_a_small_displacement_by_one_plus_alpha(monkeypatch, alpha):
    monkeypatch.setattr(augment, "MAGNIFY_ALPHA", (alpha, alpha))
    delta = 0.3  # px: small against the blob, where the first-order (Eulerian) approximation holds
    onset, apex = _blob(SIZE / 2), _blob(SIZE / 2 + delta)
    out = magnify({"onset": onset, "apex": apex}, {}, torch.Generator().manual_seed(0))
    moved = _centroid_x(out["apex"]) - _centroid_x(onset)
    assert moved == pytest.approx((1 + alpha) * delta, rel=0.05)
    torch.testing.assert_close(out["onset"], onset)  # the onset is the reference and stays


def test_magnify_draws_per_sample_factors_in_range_and_updates_the_difference():
    onset = _blob(SIZE / 2).repeat(64, 1, 1, 1)
    apex = _blob(SIZE / 2 + 0.3).repeat(64, 1, 1, 1)
    out = magnify({"onset": onset, "apex": apex, "apex_minus_onset": apex - onset}, {},
                  torch.Generator().manual_seed(1))
    torch.testing.assert_close(out["apex_minus_onset"], out["apex"] - onset)
    factors = [(_centroid_x(out["apex"][i:i + 1]) - SIZE / 2) / 0.3 for i in range(64)]
    low, high = augment.MAGNIFY_ALPHA
    assert min(factors) >= 1 + low - 0.05 and max(factors) <= 1 + high + 0.05
    assert max(factors) - min(factors) > 1.0  # drawn per sample, not once per batch


def test_magnify_is_registered_reads_onset_and_apex_and_needs_them():
    assert get_augmentations(["apex_jitter", "magnify"])[1] is magnify
    assert set(magnify.extra_keys) == {"onset", "apex"}
    with pytest.raises(KeyError, match="onset_apex_frames"):
        magnify({"flow": torch.zeros(2, 3, 8, 8)}, {}, torch.Generator())

"""Raw-clip model inputs of the motion stage: onset/apex crops with jitter windows, AU boxes, self-supervised pairs
(merkit.motion.representations, merkit.motion.stage)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from merkit.face.regions import au_boxes, au_regions
from merkit.motion.representations import (JITTER_MODES, apex_minus_onset, jitter_bounds, jitter_reaches,
                                           jitter_windows, onset_apex_frames, ss_pair_positions, ss_pairs)
from merkit.motion.stage import INPUT_KEYS, MotionConfig, input_keys_of, motion_inputs


def _clip(length: int = 12, side: int = 32, seed: int = 0) -> np.ndarray:
    """A (T, S, S) uint8 clip whose frame t is noise plus a brightness of 10 t, so frames are told apart."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 100, size=(side, side))
    return np.stack([base + 10 * t for t in range(length)]).astype(np.uint8)


def _landmarks(side: int) -> np.ndarray:
    from merkit.face.align import TEMPLATE_68
    from merkit.face.crop import crop_box, crop_matrix

    matrix = crop_matrix(crop_box(TEMPLATE_68, "slstt"), side)
    return TEMPLATE_68 @ matrix[:2, :2].T + matrix[:2, 2]


def test_jitter_windows_are_centred_on_the_labels_clamped_to_the_clip_and_never_cross():
    onset, apex = jitter_windows(5, 20, 30, 2)
    assert onset.tolist() == [3, 4, 5, 6, 7] and apex.tolist() == [18, 19, 20, 21, 22]
    onset, apex = jitter_windows(1, 28, 30, 3)  # clip edges
    assert onset.tolist() == [0, 0, 0, 1, 2, 3, 4] and apex.tolist() == [25, 26, 27, 28, 29, 29, 29]
    for gap in range(7):
        for j in (1, 2, 4):
            onset, apex = jitter_windows(10, 10 + gap, 40, j)
            assert onset[j] == 10 and apex[j] == 10 + gap
            if gap >= 1:
                assert onset.max() < apex.min()  # every drawn onset precedes every drawn apex
            else:
                assert onset.max() <= apex.min()
    with pytest.raises(ValueError):
        jitter_windows(10, 5, 20, 2)


def drawable(onset: int, apex: int, offset: int, length: int, jitter: int, mode: str) -> tuple[set, set]:
    """The clip positions a training sample can draw as its onset and as its apex under ``mode``."""
    onset_at, apex_at = jitter_windows(onset, apex, length, jitter)
    lo, hi, alo, ahi = jitter_bounds(onset, apex, offset, jitter, mode)
    return set(onset_at[lo:hi + 1].tolist()), set(apex_at[alo:ahi + 1].tolist())


def test_each_jitter_mode_draws_only_the_frames_of_its_own_rule():
    """symmetric: the labelled frame +-J (the MMNet report); inward: the authors' CASME2_5.py, randint(onset,
    onset + int(0.15*span/4)) and randint(apex - int(0.15*span/4), apex); mmnet-3class: their CASME2_3.py."""
    length, j = 400, 12
    for onset, apex, offset in [(20, 21, 30), (20, 50, 80), (20, 100, 150), (30, 230, 390), (20, 60, 60)]:
        span = apex - onset
        sym = drawable(onset, apex, offset, length, j, "symmetric")
        cap = max(0, (span - 1) // 2)  # the windows keep every drawn onset before every drawn apex
        assert sym == (set(range(onset - j, onset + min(j, cap) + 1)), set(range(apex - min(j, cap), apex + j + 1)))
        r = int(0.15 * span / 4)
        assert drawable(onset, apex, offset, length, j, "inward") == (set(range(onset, onset + r + 1)),
                                                                       set(range(apex - r, apex + 1)))
        assert drawable(onset, apex, offset, length, j, "mmnet-3class") == (
            set(range(onset, onset + int(0.2 * span / 4) + 1)),
            set(range(apex - int(0.15 * span / 4), apex + int(0.15 * (offset - apex) / 4) + 1)))
    assert jitter_reaches(20, 100, 150, "inward") == (3, 3, 0)
    assert jitter_reaches(20, 100, 150, "mmnet-3class") == (4, 3, 1)


def test_a_jitter_reach_of_zero_always_gives_the_labelled_frame_and_reaches_are_capped_at_j():
    for mode in JITTER_MODES:
        assert drawable(5, 5, 5, 20, 0, mode) == ({5}, {5})
    # span 20: int(0.15 * 20 / 4) = 0, so inward always gives the labelled frames; mmnet-3class moves the onset by
    # int(0.2 * 20 / 4) = 1 and keeps the apex (offset 31: int(0.15 / 4) = 0)
    assert jitter_bounds(10, 30, 31, 2, "inward").tolist() == [2, 2, 2, 2]
    assert drawable(10, 30, 31, 40, 2, "inward") == ({10}, {30})
    assert jitter_bounds(10, 30, 31, 2, "mmnet-3class").tolist() == [2, 3, 2, 2]
    assert jitter_bounds(0, 200, 300, 2, "inward").tolist() == [2, 4, 0, 2]  # reach 7, capped at J = 2
    assert jitter_bounds(3, 8, 9, 2, "symmetric").tolist() == [0, 4, 0, 4]
    assert jitter_bounds(3, 8, 9, 2).dtype == np.int64
    with pytest.raises(ValueError):
        jitter_bounds(3, 8, 9, 2, "outward")
    with pytest.raises(ValueError):
        jitter_reaches(3, 8, 9, "symmetric")


def test_onset_apex_frames_have_the_documented_shapes_and_the_labelled_frame_at_the_window_centre():
    clip = _clip()
    out = onset_apex_frames(clip, 3, 8, jitter=2, size=16)
    assert out["onset"].shape == (1, 16, 16) and out["onset_window"].shape == (5, 1, 16, 16)
    assert out["apex_window"].dtype == np.float32 and 0.0 <= out["apex_window"].min() <= out["apex_window"].max() <= 1
    np.testing.assert_array_equal(out["onset_window"][2], out["onset"])
    np.testing.assert_array_equal(out["apex_window"][2], out["apex"])
    # window k is the frame labelled + (k - J): the brightness ramp tells the frames apart
    means = [float(w.mean()) for w in out["onset_window"]]
    assert means == sorted(means) and len(set(means)) == 5
    # the difference image of the same frames is exactly apex - onset
    np.testing.assert_array_equal(apex_minus_onset(clip[3], clip[8], 16), out["apex"] - out["onset"])
    rgb = np.repeat(clip[..., None], 3, axis=-1)
    assert onset_apex_frames(rgb, 3, 8, jitter=1)["apex_window"].shape == (3, 3, 32, 32)


def test_au_boxes_lie_in_the_unit_square_and_follow_the_landmarks():
    side = 64
    landmarks = _landmarks(side)
    boxes = au_boxes(landmarks, side)
    assert boxes.shape == (9, 4) and boxes.dtype == np.float32
    assert (boxes >= 0).all() and (boxes <= 1).all()
    np.testing.assert_allclose(boxes * side, np.array(list(au_regions(landmarks, side).values())), atol=1e-4)
    moved = au_boxes(landmarks + np.array([3.0, -2.0]), side)
    inside = (boxes[:, 0] * side >= 3) & (boxes[:, 2] * side <= side - 3) & (boxes[:, 1] * side >= 2)
    assert inside.any()
    np.testing.assert_allclose((moved - boxes)[inside] * side, np.tile([3.0, -2.0, 3.0, -2.0], (inside.sum(), 1)),
                               atol=1.01)  # rounded to whole pixels
    np.testing.assert_allclose(au_boxes(landmarks[None], side)[0], boxes, atol=1e-6)  # batched = one at a time


def test_ss_pairs_are_fixed_by_the_sample_id_and_ordered_in_time():
    a = ss_pair_positions(20, 6, "casme2/sub01/EP02_01f")
    np.testing.assert_array_equal(a, ss_pair_positions(20, 6, "casme2/sub01/EP02_01f"))
    assert not np.array_equal(a, ss_pair_positions(20, 6, "casme2/sub01/EP03_02"))
    assert a.shape == (6, 2) and (a[:, 0] < a[:, 1]).all() and a.min() >= 0 and a.max() < 20
    assert (ss_pair_positions(1, 3, "x") == 0).all()
    clip = _clip()
    earlier, later = ss_pairs(clip, 3, "s/1/a", size=16)
    assert earlier.shape == later.shape == (3, 1, 16, 16)
    at = ss_pair_positions(len(clip), 3, "s/1/a")
    assert (later.mean(axis=(1, 2, 3)) > earlier.mean(axis=(1, 2, 3))).all()  # later frames are brighter
    np.testing.assert_array_equal(earlier[0, 0], onset_apex_frames(clip, at[0, 0], at[0, 0], 0, 16)["onset"][0])


def test_the_stage_writes_every_new_input_from_an_aligned_clip():
    clip = SimpleNamespace(sample_id="synthetic/sub01/EP01_01", frames=_clip(length=10, side=48),
                           frame_numbers=list(range(100, 110)), reference_index=0, landmarks=_landmarks(48))
    config = MotionConfig(representations=("apex_minus_onset", "onset_apex_frames", "au_boxes", "ss_pairs"),
                          size=24, jitter=1, ss_pairs=2)
    arrays = motion_inputs(clip, config, 1, 6, 9)
    assert {INPUT_KEYS[name] for name in arrays} == set(input_keys_of(config.representations))
    assert arrays["jitter_bounds"].tolist() == [0, 2, 0, 2]  # symmetric, J = 1
    assert arrays["onset_window"].shape == (3, 1, 24, 24) and arrays["ss_apex"].shape == (2, 1, 24, 24)
    np.testing.assert_array_equal(arrays["apex_minus_onset"], arrays["apex"] - arrays["onset"])
    np.testing.assert_array_equal(arrays["onset"], onset_apex_frames(clip.frames, 1, 6, 0, 24)["onset"])
    np.testing.assert_array_equal(arrays["au_boxes"], au_boxes(clip.landmarks, 48))


def test_the_stage_passes_the_jitter_mode_and_the_offset():
    clip = SimpleNamespace(sample_id="synthetic/sub01/EP01_01", frames=_clip(length=120, side=16),
                           frame_numbers=list(range(120)), reference_index=0, landmarks=_landmarks(16))
    # onset 10, apex 60, offset 119: span 50 gives the inward reach int(1.875) = 1; mmnet-3class moves the onset by
    # int(2.5) = 2, the apex earlier by 1 and later by int(0.15 * 59 / 4) = 2
    for mode, expected in (("symmetric", [0, 8, 0, 8]), ("inward", [4, 5, 3, 4]), ("mmnet-3class", [4, 6, 3, 6])):
        config = MotionConfig(representations=("onset_apex_frames",), size=8, jitter=4, jitter_mode=mode)
        assert motion_inputs(clip, config, 10, 60, 119)["jitter_bounds"].tolist() == expected


def test_motion_settings_are_validated():
    for bad in (dict(jitter=-1), dict(ss_pairs=0), dict(apex="guess"), dict(spot_measure="vibes"),
                dict(normalise="zscore"), dict(representations=("optical_magic",)), dict(method="lucas-kanade"),
                dict(jitter_mode="outward")):
        with pytest.raises(ValueError):
            MotionConfig(**bad)


def test_an_apex_before_the_onset_is_a_data_error_naming_the_sample():
    from merkit.errors import DataError, Where

    clip = SimpleNamespace(sample_id="synthetic/sub02/EP03_01", frames=_clip(length=6, side=16),
                           frame_numbers=list(range(6)), reference_index=0, landmarks=_landmarks(16))
    with pytest.raises(DataError, match="EP03_01"):
        motion_inputs(clip, MotionConfig(representations=("onset_apex_frames",), size=8), 4, 2, 5,
                      Where("synthetic", "sub02", "EP03_01"))

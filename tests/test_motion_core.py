"""Flow backends, optical strain, the representations and apex spotting (merkit.motion)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from merkit.motion.flow import (
    FLOW_METHODS,
    compute_flow,
    dis_flow,
    endpoint_error,
    farneback_flow,
    optical_strain,
    read_flo,
    tvl1_flow,
    write_flo,
)
from merkit.motion.representations import (
    apex_minus_onset,
    dynamic_image,
    long_term_flow,
    long_term_window,
    minmax,
    onset_apex_flow,
    rank_pooling_weights,
    resample_clip,
)
from merkit.motion.spotting import motion_curve, remove_affine, smooth_curve, spot_apex


def face(size: int = 128) -> np.ndarray:
    """The astronaut's face (a real, public-domain photo), grey uint8 (size, size)."""
    grey = cv2.cvtColor(data.astronaut()[20:260, 140:380], cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)


def translate(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def expression_clip(length: int, apex: int, amplitude: float = 2.0, size: int = 128, noise: float = 1.0,
                    seed: int = 0, drift: float = 0.0) -> np.ndarray:
    """A real face warped by a local, smooth displacement (a lip-corner pull) with a known time profile.

    The displacement rises as sin^2 from frame 0 to the apex and falls back to zero at the last frame, so the apex
    is the frame of largest motion relative to frame 0. Sensor noise (grey levels, s.d. ``noise``) is added, and
    the whole face drifts to the right, linearly in time, by ``drift`` pixels at the last frame.
    """
    base = face(size).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy, sigma = 0.65 * size, 0.72 * size, 0.12 * size
    bump = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(length):
        if t <= apex:
            p = np.sin(0.5 * np.pi * t / max(apex, 1)) ** 2
        else:
            p = np.cos(0.5 * np.pi * (t - apex) / max(length - 1 - apex, 1)) ** 2
        du = (amplitude * p * bump + drift * t / (length - 1)).astype(np.float32)
        dv = (-0.5 * amplitude * p * bump).astype(np.float32)
        warped = cv2.remap(base, xx - du, yy - dv, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        frames.append(np.clip(warped + rng.normal(0, noise, warped.shape), 0, 255).astype(np.uint8))
    return np.stack(frames)


# --- flow backends -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_each_backend_recovers_a_known_translation_with_u_right_and_v_down(method):
    img = face(96)
    flow = compute_flow(img, translate(img, 1.5, -0.75), method)
    assert flow.dtype == np.float32 and flow.shape == (96, 96, 2)
    u, v = np.median(flow[16:-16, 16:-16, 0]), np.median(flow[16:-16, 16:-16, 1])
    assert u == pytest.approx(1.5, abs=0.35) and v == pytest.approx(-0.75, abs=0.35)


def test_compute_flow_dispatches_to_the_named_backend_with_its_parameters():
    img = face(64)
    nxt = translate(img, 1.0, 0.5)
    np.testing.assert_array_equal(compute_flow(img, nxt, "farneback", winsize=9), farneback_flow(img, nxt, winsize=9))
    np.testing.assert_array_equal(compute_flow(img, nxt, "dis", preset="fast"), dis_flow(img, nxt, preset="fast"))
    np.testing.assert_array_equal(compute_flow(img, nxt, "tvl1", warps=2), tvl1_flow(img, nxt, warps=2))


def test_farneback_defaults_are_slstts_parameters():
    img = face(64)
    nxt = translate(img, 1.0, 0.5)
    slstt = cv2.calcOpticalFlowFarneback(img, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    np.testing.assert_array_equal(farneback_flow(img, nxt), slstt)


def test_flow_rejects_unknown_methods_parameters_and_mismatched_frames():
    img = face(32)
    with pytest.raises(ValueError, match="flow method"):
        compute_flow(img, img, "horn-schunck")
    with pytest.raises(ValueError, match="unknown DIS parameters"):
        dis_flow(img, img, patchsize=8)
    with pytest.raises(ValueError, match="same size"):
        compute_flow(img, face(40), "farneback")


def test_float_frames_in_unit_range_give_the_same_flow_as_their_uint8_source():
    img = face(64)
    nxt = translate(img, 1.0, 0.0)
    np.testing.assert_array_equal(farneback_flow(img / 255.0, nxt / 255.0), farneback_flow(img, nxt))


def test_tvl1_matches_the_ipol_reference_on_real_casme2_frames(shared_data):
    """Golden test: OpenCV TV-L1 vs the IPOL TV-L1 reference flow on CASME II frames 001 -> 002."""
    folder = shared_data / "flow-golden" / "casme2-10frames"
    if not (folder / "001-to-002.tvl1-ipol.flo").is_file():
        pytest.skip("flow-golden data not available")
    reference = read_flo(folder / "001-to-002.tvl1-ipol.flo")
    prev = cv2.imread(str(folder / "001.jpg"), cv2.IMREAD_GRAYSCALE)
    nxt = cv2.imread(str(folder / "002.jpg"), cv2.IMREAD_GRAYSCALE)
    flow = tvl1_flow(prev, nxt)
    assert flow.shape == reference.shape
    corr_u = np.corrcoef(flow[..., 0].ravel(), reference[..., 0].ravel())[0, 1]
    corr_v = np.corrcoef(flow[..., 1].ravel(), reference[..., 1].ravel())[0, 1]
    epe = endpoint_error(flow, reference)
    print(f"TV-L1 vs IPOL: corr u {corr_u:.4f}, corr v {corr_v:.4f}, mean EPE {epe:.4f} px")
    assert corr_u >= 0.9 and corr_v >= 0.9
    assert epe < 0.5 * float(np.hypot(reference[..., 0], reference[..., 1]).mean())


def test_flo_files_round_trip(tmp_path):
    flow = np.random.default_rng(0).normal(size=(5, 7, 2)).astype(np.float32)
    write_flo(tmp_path / "x.flo", flow)
    np.testing.assert_array_equal(read_flo(tmp_path / "x.flo"), flow)
    (tmp_path / "bad.flo").write_bytes(b"NOPE" + bytes(8))
    with pytest.raises(ValueError, match="not a Middlebury"):
        read_flo(tmp_path / "bad.flo")


# --- optical strain ------------------------------------------------------------------------------------------


def _field(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.stack([u, v], axis=-1).astype(np.float32)


def test_strain_of_a_pure_translation_is_zero():
    ones = np.ones((20, 30))
    np.testing.assert_array_equal(optical_strain(_field(2.5 * ones, -1.0 * ones)), 0.0)


def test_strain_of_a_linear_shear_is_the_known_constant_everywhere():
    yy, xx = np.mgrid[0:20, 0:30].astype(np.float64)
    a = 0.3
    # u = a y: only u_y is non-zero, so e = sqrt(1/2 a^2) = a / sqrt(2), borders included.
    np.testing.assert_allclose(optical_strain(_field(a * yy, 0 * yy)), a / np.sqrt(2), rtol=1e-6)
    # u = a x, v = -a y: pure normal strain, e = sqrt(2) a.
    np.testing.assert_allclose(optical_strain(_field(a * xx, -a * yy)), np.sqrt(2) * a, rtol=1e-6)


def test_strain_of_a_rigid_rotation_is_zero():
    yy, xx = np.mgrid[0:20, 0:30].astype(np.float64)
    w = 0.05
    np.testing.assert_allclose(optical_strain(_field(-w * yy, w * xx)), 0.0, atol=1e-7)


# --- representations -----------------------------------------------------------------------------------------


def test_onset_apex_flow_is_u_v_strain_minmax_per_channel_or_raw():
    img = face(96)
    apex = translate(img, 1.0, 0.5)
    stretched = onset_apex_flow(img, apex, size=28, method="farneback")
    assert stretched.shape == (3, 28, 28) and stretched.dtype == np.float32
    for channel in stretched:
        assert channel.min() == 0.0 and channel.max() == pytest.approx(1.0)
    raw = onset_apex_flow(img, apex, size=None, normalise="none", method="farneback")
    flow = farneback_flow(img, apex)
    np.testing.assert_array_equal(raw[0], flow[..., 0])
    np.testing.assert_array_equal(raw[2], optical_strain(flow))
    with pytest.raises(ValueError, match="normalise"):
        onset_apex_flow(img, apex, normalise="zscore")


def test_minmax_stretches_to_unit_range_and_maps_constants_to_zero():
    np.testing.assert_allclose(minmax(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(minmax(np.full((3, 3), 7.0)), 0.0)


def test_apex_minus_onset_is_the_unit_scaled_difference_channel_first():
    onset = np.full((8, 8), 100, np.uint8)
    apex = onset.copy()
    apex[2, 3] = 151
    diff = apex_minus_onset(onset, apex)
    assert diff.shape == (1, 8, 8)
    assert diff[0, 2, 3] == pytest.approx(51 / 255) and np.count_nonzero(diff) == 1
    rgb = apex_minus_onset(np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8), size=4)
    assert rgb.shape == (3, 4, 4) and np.all(rgb == 1.0)


def test_rank_pooling_weights_follow_bilen_et_al_and_sum_to_zero():
    for length in (2, 5, 11):
        w = rank_pooling_weights(length)
        nested = [sum((2 * j - length - 1) / j for j in range(t, length + 1)) for t in range(1, length + 1)]
        np.testing.assert_allclose(w, nested, atol=1e-12)
        assert w.sum() == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(rank_pooling_weights(2), [-0.5, 0.5])


def test_dynamic_image_is_zero_for_a_static_clip_and_positive_where_the_clip_brightens():
    static = np.repeat(face(16)[None], 6, axis=0)
    np.testing.assert_allclose(dynamic_image(static, normalise="none"), 0.0, atol=1e-5)
    ramp = np.zeros((6, 4, 4), np.float32)
    ramp[:, 1, 1] = np.linspace(0.0, 1.0, 6)
    ramp[:, 2, 2] = np.linspace(1.0, 0.0, 6)
    img = dynamic_image(ramp, normalise="none")[0]
    assert img[1, 1] > 0 > img[2, 2] and img[0, 0] == pytest.approx(0.0, abs=1e-6)
    stretched = dynamic_image(ramp)[0]
    assert stretched[1, 1] == 1.0 and stretched[2, 2] == 0.0


def test_resample_clip_keeps_ends_and_interpolates_linearly_in_time():
    clip = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((4, 2, 3), np.float32)
    out = resample_clip(clip, 7)
    assert out.shape == (7, 2, 3)
    np.testing.assert_allclose(out[:, 0, 0], np.linspace(0, 3, 7))
    np.testing.assert_allclose(resample_clip(clip, 2)[:, 0, 0], [0, 3])
    np.testing.assert_allclose(resample_clip(clip, 7, kind="nearest")[:, 0, 0], [0, 0, 1, 2, 2, 2, 3])
    with pytest.raises(ValueError):
        resample_clip(clip, 0)


@pytest.mark.parametrize(
    "onset, apex, offset",
    [(0, 3, 6), (0, 20, 60), (10, 12, 50), (0, 58, 60), (5, 5, 5), (0, 0, 3)],
)
def test_long_term_window_always_has_f_times_in_temporal_order_within_the_clip(onset, apex, offset):
    times = long_term_window(onset, apex, offset, frames=11)
    assert len(times) == 11
    assert np.all(np.diff(times) >= 0)
    assert times[0] >= min(onset + 1, offset) and times[-1] <= offset
    if onset + 1 <= apex - 5 and apex + 5 <= offset:
        assert np.all(np.diff(times) == 1.0)  # a window that fits uses real frames only


def test_long_term_window_follows_slstts_selection():
    # SLSTT: start = max(apex - F // 2, onset + 1), end = min(start + F - 1, offset).
    np.testing.assert_array_equal(long_term_window(0, 30, 60, 11), np.arange(25, 36))
    np.testing.assert_array_equal(long_term_window(10, 12, 60, 11), np.arange(11, 22))
    np.testing.assert_allclose(long_term_window(0, 58, 60, 11), np.linspace(53, 60, 11))


@pytest.mark.parametrize("length", [5, 30])
def test_long_term_flow_yields_f_frames_in_temporal_order_for_short_and_long_clips(length):
    apex = length // 2
    clip = expression_clip(length, apex, amplitude=2.0, size=48, noise=0.0)
    raw = long_term_flow(clip, apex=apex, encoding="raw", size=24)
    assert raw.shape == (11, 3, 24, 24) and raw.dtype == np.float32
    # Temporal order: the motion from the onset grows up to the apex.
    times = long_term_window(0, apex, length - 1, 11)
    rising = times <= apex
    mean_mag = raw[:, 2].mean(axis=(1, 2))
    assert np.all(np.diff(mean_mag[rising]) > -1e-3)
    hsv = long_term_flow(clip, apex=apex, size=24)
    assert hsv.shape == (11, 3, 24, 24) and 0.0 <= hsv.min() and hsv.max() <= 1.0


def test_long_term_flow_rejects_positions_outside_the_clip():
    clip = np.zeros((5, 8, 8), np.uint8)
    with pytest.raises(ValueError, match="onset <= apex <= offset"):
        long_term_flow(clip, apex=6)
    with pytest.raises(ValueError, match="encoding"):
        long_term_flow(clip, apex=2, encoding="rgb")


# --- apex spotting -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length, apex", [(30, 9), (40, 27), (25, 12)])
def test_apex_spotting_lands_within_two_frames_of_the_true_apex(length, apex):
    clip = expression_clip(length, apex, amplitude=2.0, size=96, seed=apex)
    spot = spot_apex(clip)
    assert abs(spot.apex - apex) <= 2, spot.smoothed.round(3)
    assert spot.curve.shape == (length,)


@pytest.mark.parametrize("measure", ["strain", "intensity"])
def test_other_spotting_measures_also_find_the_apex(measure):
    clip = expression_clip(30, 18, amplitude=2.0, size=96, seed=1)
    assert abs(spot_apex(clip, measure=measure).apex - 18) <= 2


def test_affine_compensation_keeps_a_rigid_head_drift_from_moving_the_spotted_apex():
    clip = expression_clip(30, 10, amplitude=1.5, size=96, seed=4, drift=3.0)
    assert abs(spot_apex(clip).apex - 10) <= 2
    assert spot_apex(clip, compensate="none").apex >= 20  # uncompensated, the drift wins towards the offset


def test_remove_affine_leaves_zero_for_an_affine_field_and_keeps_a_local_bump():
    yy, xx = np.mgrid[0:20, 0:30].astype(np.float64)
    affine = _field(0.5 + 0.01 * xx - 0.02 * yy, -0.3 + 0.03 * xx)
    np.testing.assert_allclose(remove_affine(affine), 0.0, atol=1e-4)
    bump = np.zeros((20, 30, 2), np.float32)
    bump[8:12, 10:14, 0] = 1.0
    assert np.abs(remove_affine(affine + bump)[9, 11, 0]) > 0.9


def test_spotting_searches_only_within_onset_and_offset():
    clip = expression_clip(30, 20, amplitude=2.0, size=64, seed=2)
    spot = spot_apex(clip, onset=2, offset=12)
    assert 2 <= spot.apex <= 12 and spot.curve.shape == (11,)
    assert spot.apex >= 10  # the motion still rises at the offset of this window


def test_spotting_accepts_a_callable_measure_and_a_mask():
    clip = expression_clip(20, 8, size=64, noise=0.0)
    mask = np.zeros((64, 64), bool)
    mask[10:54, 7:20] = True  # far from the moving region: nothing moves there
    curve = motion_curve(clip, measure="intensity", mask=mask)
    assert curve.max() < 0.01
    spot = spot_apex(clip, measure=lambda a, b: float(np.abs(b - a).sum()), smooth=1)
    assert abs(spot.apex - 8) <= 1 and spot.measure == "<lambda>"


def test_smooth_curve_is_a_centred_moving_average():
    np.testing.assert_allclose(smooth_curve(np.array([0, 0, 3.0, 0, 0]), 3), [0, 1, 1, 1, 0])
    with pytest.raises(ValueError):
        smooth_curve(np.zeros(4), 2)


def test_representations_accept_rgb_clips_and_keep_three_colour_channels():
    grey = expression_clip(12, 5, size=32, noise=0.0)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    assert long_term_flow(rgb, apex=5, frames=4, size=16).shape == (4, 3, 16, 16)
    np.testing.assert_allclose(long_term_flow(rgb, apex=5, frames=4, encoding="raw"),
                               long_term_flow(grey, apex=5, frames=4, encoding="raw"), atol=1e-5)
    assert dynamic_image(rgb, size=16).shape == (3, 16, 16)
    assert apex_minus_onset(rgb[0], rgb[5]).shape == (3, 32, 32)
    assert resample_clip(rgb, 5).shape == (5, 32, 32, 3)

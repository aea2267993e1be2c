"""The raw-clip feature builder (merkit.pipeline) on synthetic clips: shapes, labels, one face fit per clip, errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from merkit.datasets.synthetic import generate
from merkit.errors import DataError, Diagnostics
from merkit.face.landmarks import FaceNotFoundError
from merkit.pipeline import DEFAULT_FACE, build_flow_features, clip_flow


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("pipe") / "d", subjects=1, clips_per_class=1, seed=5, duration=(15, 15))


def test_flow_features_are_u_v_strain_images_labelled_by_the_scheme(table):
    fs = build_flow_features(table, "megc2019-3class", size=28)
    flow = fs.inputs["flow"]
    assert flow.shape == (3, 3, 28, 28) and flow.dtype.is_floating_point and str(flow.dtype) == "torch.float32"
    assert float(flow.min()) == 0.0 and float(flow.max()) == 1.0
    assert fs.meta["flow_channels"] == ["u", "v", "strain"]
    assert list(fs.table["sample_id"]) == list(table["sample_id"])
    assert [fs.classes[k] for k in fs.table["label"]] == list(table["label_class"])


def test_face_is_fitted_once_on_the_onset_so_a_head_shift_shows_as_flow(table):
    """The apex is the onset moved 3 px to the right: one crop fitted on the onset sees that motion; a crop
    re-fitted on the apex would cancel it."""
    onset = cv2.imread(table.frames[0][0], cv2.IMREAD_GRAYSCALE)
    apex = np.roll(onset, 3, axis=1)
    maps = clip_flow(onset, apex, size=None, normalise="none")
    centre = maps[0][32:96, 32:96]
    scale = DEFAULT_FACE.size / 280  # crop pixels per frame pixel, roughly (the crop is about as wide as the frame)
    assert np.median(centre) > 0.5 * 3 * scale
    assert abs(np.median(maps[1][32:96, 32:96])) < 0.3


def test_missing_apex_frame_is_an_error_naming_the_sample(table):
    broken = table.copy()
    broken.at[0, "frames"] = [f for f in table.frames[0] if not f.endswith(f"img{table.apex[0]}.jpg")]
    with pytest.raises(DataError, match=table["sample"][0]):
        build_flow_features(broken.iloc[:1])


def test_faceless_onset_is_raised_or_skipped_and_counted(table, tmp_path):
    blank = tmp_path / f"img{table.onset[0]}.jpg"
    cv2.imwrite(str(blank), np.full((340, 280), 128, np.uint8))
    broken = table.copy()
    broken.at[0, "frames"] = [str(blank)] + list(table.frames[0][1:])
    with pytest.raises(FaceNotFoundError, match=table["sample"][0]):
        build_flow_features(broken)
    diagnostics = Diagnostics()
    with pytest.warns(UserWarning, match="face-not-found"):
        fs = build_flow_features(broken, diagnostics=diagnostics, skip_faceless=True)
    assert len(fs) == 2 and table["sample_id"][0] not in set(fs.table["sample_id"])
    assert diagnostics.summary() == {"face-not-found": 1}

"""Onset->apex flow through the inputs stage on synthetic clips: shapes, labels, one face fit per clip, errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from merkit.errors import DataError
from merkit.face.clip import FaceConfig
from merkit.face.landmarks import FaceNotFoundError
from merkit.inputs import Preprocessing, build_inputs, clip_inputs
from merkit.motion.stage import MotionConfig
from merkit.synthetic import generate

FACE = FaceConfig(size=128, upsample=0)
FAST = Preprocessing(FACE, MotionConfig(flow_params={"nscales": 3, "warps": 2, "epsilon": 0.02}))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("pipe") / "d", subjects=1, clips_per_class=1, seed=5, duration=(15, 15))


def test_flow_inputs_are_u_v_strain_images_labelled_by_the_scheme(table):
    fs = build_inputs(table, FAST)
    flow = fs.inputs["flow"]
    assert flow.shape == (3, 3, 28, 28) and str(flow.dtype) == "torch.float32"
    assert float(flow.min()) == 0.0 and float(flow.max()) == 1.0
    assert fs.meta["flow_channels"] == ["u", "v", "strain"]
    assert list(fs.table["sample_id"]) == list(table["sample_id"])
    assert [fs.classes[k] for k in fs.table["label"]] == list(table["label_class"])


def test_face_is_fitted_once_on_the_onset_so_a_head_shift_shows_as_flow(table):
    """The apex is the onset moved 3 px to the right: one crop fitted on the onset sees that motion; a crop
    re-fitted on the apex would cancel it."""
    onset = cv2.cvtColor(cv2.imread(table.frames[0][0]), cv2.COLOR_BGR2RGB)
    apex = np.roll(onset, 3, axis=1)
    raw = Preprocessing(FACE, MotionConfig(size=None, normalise="none"))
    maps = clip_inputs([onset, apex], [0, 1], raw, onset=0, apex=1).inputs["flow"]
    centre = maps[0][32:96, 32:96]
    scale = FACE.size / 280  # crop pixels per frame pixel, roughly (the crop is about as wide as the frame)
    assert np.median(centre) > 0.5 * 3 * scale
    assert abs(np.median(maps[1][32:96, 32:96])) < 0.3


def test_a_missing_apex_frame_is_an_error_naming_the_sample(table):
    broken = table.copy()
    broken.at[0, "frames"] = [f for f in table.frames[0] if not f.endswith(f"img{table.apex[0]}.jpg")]
    with pytest.raises(DataError, match=table["sample"][0]):
        build_inputs(broken.iloc[:1], FAST, on_error="raise")


def test_a_faceless_onset_is_raised_or_skipped_and_counted(table, tmp_path):
    blank = tmp_path / f"img{table.onset[0]}.jpg"
    cv2.imwrite(str(blank), np.full((340, 280), 128, np.uint8))
    broken = table.copy()
    broken.at[0, "frames"] = [str(blank)] + list(table.frames[0][1:])
    with pytest.raises(FaceNotFoundError, match=table["sample"][0]):
        build_inputs(broken, FAST, on_error="raise")
    with pytest.warns(UserWarning, match="face-not-found"):
        fs = build_inputs(broken, FAST)
    assert len(fs) == 2 and table["sample_id"][0] not in set(fs.table["sample_id"])
    assert fs.meta["diagnostics"] == {"face-not-found": 1}

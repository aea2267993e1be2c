"""The per-clip function of the inputs stage: which frames a clip contributes, where the face is fitted, the one apex
rule, and what is decoded."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from merkit.datasets.table import new_sample_table
from merkit.errors import DataError
from merkit.face.clip import FaceConfig
from merkit.inputs import Preprocessing, clip_inputs, row_inputs
from merkit.media import FrameFiles
from merkit.motion.stage import MotionConfig

# resample_clip keeps every aligned frame of onset..offset: the clip's frames can be inspected.
CLIP = MotionConfig(representations=("resample_clip",), size=32, resample_length=3)
FLOW = MotionConfig(method="farneback", size=16)


@pytest.fixture()
def row(tmp_path, pexels_frames) -> dict:
    folder = tmp_path / "sub01" / "EP01_01"
    folder.mkdir(parents=True)
    paths = []
    for number, frame in zip(range(40, 40 + len(pexels_frames)), pexels_frames):
        path = folder / f"img{number}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    table = new_sample_table([dict(dataset="casme2", subject="sub01", sample="EP01_01", emotion="happiness",
                                   onset=41, apex=43, offset=45, frames=paths)])
    return table.iloc[0].to_dict()


def test_a_sample_is_fitted_on_its_onset_and_cut_to_the_span(row):
    result = row_inputs(row, Preprocessing(FaceConfig(size=64, span="onset-apex"), CLIP))
    assert result.clip.frame_numbers == [41, 42, 43] and result.clip.reference_index == 0
    assert (result.onset, result.apex, result.offset, result.apex_source) == (41, 43, 43, "annotated")
    assert result.clip.sample_id == "casme2/sub01/EP01_01"
    whole = row_inputs(row, Preprocessing(FaceConfig(size=64, reference="apex"), CLIP))
    assert whole.clip.frame_numbers == list(range(40, 47))
    assert whole.clip.frame_numbers[whole.clip.reference_index] == 43
    assert (whole.onset, whole.offset) == (41, 45)


def test_pair_representations_decode_only_the_onset_and_apex_frames(row, monkeypatch):
    decoded = []
    original = FrameFiles.__getitem__
    monkeypatch.setattr(FrameFiles, "__getitem__", lambda self, i: decoded.append(i) or original(self, i))
    result = row_inputs(row, Preprocessing(FaceConfig(size=64), FLOW))
    assert sorted(decoded) == [1, 3] and result.clip.frame_numbers == [41, 43]
    assert (result.onset, result.apex, result.offset) == (41, 43, 45)
    # ... and the flow is the same as from the whole aligned clip, which uses the same one transform.
    frames = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in row["frames"]]
    spotted = clip_inputs(frames, list(range(40, 47)), Preprocessing(FaceConfig(size=64), FLOW), onset=41, apex=43,
                          offset=45, apex_rule="spot")
    assert spotted.clip.frame_numbers == list(range(40, 47))
    if spotted.apex == 43:
        np.testing.assert_array_equal(spotted.inputs["flow"], result.inputs["flow"])


def test_the_apex_rule_spots_only_where_no_apex_is_given_and_never_returns_the_onset(pexels_frames):
    still = [pexels_frames[0]] * 4  # no motion at all: every frame ties with the onset
    record = Preprocessing(FaceConfig(size=64), FLOW)
    result = clip_inputs(still, [0, 1, 2, 3], record)
    assert result.apex_source == "spotted" and result.apex > result.onset == 0
    assert clip_inputs(still, [0, 1, 2, 3], record, onset=0, apex=2).apex_source == "annotated"
    strict = Preprocessing(record.face, MotionConfig(method="farneback", size=16, apex="annotated"))
    with pytest.raises(DataError, match="no apex frame number"):
        clip_inputs(still, [0, 1, 2, 3], strict, onset=0)


def test_a_span_needing_a_missing_annotation_or_a_missing_frame_raises_naming_the_sample(row):
    with pytest.raises(DataError, match="sample=EP01_01"):
        row_inputs({**row, "apex": None}, Preprocessing(FaceConfig(span="onset-apex"), CLIP))
    with pytest.raises(DataError, match=r"onset frame 30 is not among the clip's frames.*sample=EP01_01"):
        row_inputs({**row, "onset": 30}, Preprocessing(FaceConfig(size=64), CLIP))
    with pytest.raises(DataError, match="holds no frame number"):
        row_inputs({**row, "frames": ["/nowhere/frame.jpg"]}, Preprocessing(FaceConfig(size=64), CLIP))
    with pytest.raises(DataError, match="offset .* comes before the onset"):
        row_inputs({**row, "onset": 45, "offset": 41, "apex": None}, Preprocessing(FaceConfig(size=64), CLIP))


def test_a_sample_without_onset_is_fitted_on_its_first_frame_with_a_note(row):
    result = row_inputs({**row, "onset": None}, Preprocessing(FaceConfig(size=64), CLIP))
    assert result.clip.reference_index == 0 and result.onset == 40
    assert [n.split(":")[0] for n in result.notes] == ["reference-fallback"]

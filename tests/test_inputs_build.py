"""The table path of the inputs stage: build_inputs, cached per clip and keyed by the record, resumable, parallel, with
one skip policy."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from merkit.datasets.table import new_sample_table
from merkit.errors import ConfigError, DataError
from merkit.face.clip import FaceConfig
from merkit.inputs import Preprocessing, build_inputs
from merkit.inputs.build import InputsCache
from merkit.motion.stage import MotionConfig

# The aligned clip itself, resampled to 3 frames of 32 px, and a fast flow: cheap and easy to compare.
RECORD = Preprocessing(FaceConfig(size=64), MotionConfig(representations=("resample_clip", "onset_apex_flow"),
                                                          method="farneback", size=32, resample_length=3))
SCHEME = "casme2-5class"


def _write_clip(root: Path, subject: str, sample: str, images: list[np.ndarray], first: int = 1) -> list[str]:
    folder = root / subject / sample
    folder.mkdir(parents=True)
    paths = []
    for number, image in enumerate(images, start=first):
        path = folder / f"img{number}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def table(tmp_path_factory, shared_data):
    """Four CASME II-like clips over real frames: two of the video, one with five faces, one without a face."""
    root = tmp_path_factory.mktemp("frames")
    capture = cv2.VideoCapture(str(shared_data / "faces" / "WolfgangLanger_Pexels.mp4"))
    video = []
    for _ in range(6):
        ok, frame = capture.read()
        assert ok
        video.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    crowd = cv2.imread(str(shared_data / "faces" / "multi_face.jpg"))[:, :, ::-1]
    rows = [
        dict(subject="sub01", sample="EP01_01", frames=_write_clip(root, "sub01", "EP01_01", video[:3]),
             onset=1, apex=2, offset=3),
        dict(subject="sub01", sample="EP01_02", frames=_write_clip(root, "sub01", "EP01_02", video[3:], first=10),
             onset=10, apex=11, offset=12),
        dict(subject="sub02", sample="EP02_01", frames=_write_clip(root, "sub02", "EP02_01", [crowd, crowd]),
             onset=1, apex=2, offset=2),
        dict(subject="sub03", sample="EP03_01", frames=_write_clip(root, "sub03", "EP03_01",
                                                                   [skimage.data.coffee()] * 2), onset=1, apex=2),
    ]
    return new_sample_table([dict(dataset="casme2", emotion="happiness", **r) for r in rows])


def _meta(cache: Path, sample_id: str, record: Preprocessing = RECORD) -> Path:
    return InputsCache(cache, record).folder(sample_id) / "meta.json"


def test_build_inputs_caches_clips_and_skips_a_faceless_clip_with_a_counted_warning(table, tmp_path):
    with pytest.warns(UserWarning) as caught:
        features = build_inputs(table, RECORD, SCHEME, tmp_path)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert messages[0].startswith("face-not-found: skipped") and "sample=EP03_01" in messages[0]
    assert messages[1].startswith("several-faces: 4 faces") and "sample=EP02_01" in messages[1]
    assert features.table["sample_id"].tolist() == list(table["sample_id"][:3])
    assert features.meta["clips"] | {"seconds": 0} == {"clips": 4, "computed": 3, "cached": 0, "failed": 1,
                                                       "seconds": 0, "workers": 1}
    assert features.meta["diagnostics"] == {"face-not-found": 1, "several-faces": 1}
    assert features.inputs["clip"].shape == (3, 3, 32, 32) and features.inputs["flow"].shape == (3, 3, 32, 32)
    assert features.meta["preprocessing"] == RECORD.to_dict()
    meta = json.loads(_meta(tmp_path, "casme2/sub01/EP01_02").read_text())
    assert [Path(p).name for p in meta["frame_paths"]] == ["img10.jpg", "img11.jpg", "img12.jpg"]
    assert (meta["onset_frame"], meta["apex_frame"], meta["offset_frame"]) == (10, 11, 12)
    assert not _meta(tmp_path, "casme2/sub03/EP03_01").exists()  # failed clips are not cached: retried next run


def test_on_error_raise_stops_at_the_failing_clip_naming_it(table, tmp_path):
    with pytest.raises(DataError, match="sample=EP03_01"):
        build_inputs(table, RECORD, SCHEME, tmp_path, on_error="raise")
    with pytest.raises(ConfigError, match="on_error"):
        build_inputs(table, RECORD, SCHEME, tmp_path, on_error="ignore")
    with pytest.raises(ConfigError, match="workers"):
        build_inputs(table, RECORD, SCHEME, tmp_path, workers=0)


def test_rerun_reuses_the_cache_and_another_record_never_mixes(table, tmp_path):
    rows = table.iloc[:2]
    first = build_inputs(rows, RECORD, SCHEME, tmp_path)
    stamp = _meta(tmp_path, "casme2/sub01/EP01_01").stat().st_mtime_ns
    again = build_inputs(rows, RECORD, SCHEME, tmp_path)
    assert (again.meta["clips"]["computed"], again.meta["clips"]["cached"]) == (0, 2)
    assert _meta(tmp_path, "casme2/sub01/EP01_01").stat().st_mtime_ns == stamp
    assert all(np.array_equal(first.inputs[k], again.inputs[k]) for k in first.inputs)

    rgb = Preprocessing(FaceConfig(size=64, color="rgb"), RECORD.motion)
    assert rgb.config_hash() != RECORD.config_hash()
    other = build_inputs(rows, rgb, SCHEME, tmp_path)
    assert other.meta["clips"]["computed"] == 2 and other.inputs["clip"].shape == (2, 3, 32, 32, 3)


def test_an_interrupted_run_resumes_only_the_unfinished_clip(table, tmp_path):
    rows = table.iloc[:2]
    build_inputs(rows, RECORD, SCHEME, tmp_path)
    # A run killed mid-clip leaves inputs.npz but no meta.json, which is written last.
    _meta(tmp_path, "casme2/sub01/EP01_02").unlink()
    resumed = build_inputs(rows, RECORD, SCHEME, tmp_path)
    assert (resumed.meta["clips"]["computed"], resumed.meta["clips"]["cached"]) == (1, 1)


def test_another_release_with_the_same_ids_or_changed_frames_or_marks_is_recomputed(table, tmp_path):
    row = table.iloc[:1]
    first = build_inputs(row, RECORD, SCHEME, tmp_path / "cache")
    # A second release in another folder, same ids and annotations, other frames (the first clip played backwards).
    images = [cv2.imread(p)[:, :, ::-1] for p in row.iloc[0]["frames"]][::-1]
    other = row.copy()
    other.at[other.index[0], "frames"] = _write_clip(tmp_path / "release2", "sub01", "EP01_01", images)
    second = build_inputs(other, RECORD, SCHEME, tmp_path / "cache")
    assert second.meta["clips"]["computed"] == 1 and not np.array_equal(second.inputs["clip"], first.inputs["clip"])
    assert build_inputs(other, RECORD, SCHEME, tmp_path / "cache").meta["clips"]["cached"] == 1
    # The same paths, rewritten in place (a release regenerated with another seed), are not reused either.
    path = other.iloc[0]["frames"][1]
    cv2.imwrite(path, np.clip(cv2.imread(path).astype(int) + 40, 0, 255).astype(np.uint8))
    assert build_inputs(other, RECORD, SCHEME, tmp_path / "cache").meta["clips"]["computed"] == 1
    # Nor is a clip whose annotation changed.
    moved = other.copy()
    moved.at[moved.index[0], "apex"] = 3
    assert build_inputs(moved, RECORD, SCHEME, tmp_path / "cache").meta["clips"]["computed"] == 1


def test_two_workers_give_the_same_inputs_as_one(table, tmp_path):
    serial = build_inputs(table.iloc[:2], RECORD, SCHEME, tmp_path / "serial", workers=1)
    parallel = build_inputs(table.iloc[:2], RECORD, SCHEME, tmp_path / "parallel", workers=2)
    assert parallel.table["sample_id"].tolist() == serial.table["sample_id"].tolist()
    for key in serial.inputs:
        assert np.array_equal(serial.inputs[key], parallel.inputs[key])


def test_without_a_cache_nothing_is_written(table, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    features = build_inputs(table.iloc[:1], RECORD, SCHEME, cache=None)
    assert len(features) == 1 and list(tmp_path.iterdir()) == []

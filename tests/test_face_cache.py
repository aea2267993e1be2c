"""The per-clip cache: config-hash keyed, resumable, parallel, with a failure summary and a seam for later stages."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from merkit.datasets.table import new_sample_table
from merkit.face.cache import cache_dir, clip_dir, load_clip, preprocess, stage_dir
from merkit.face.clip import AlignedClip, FaceConfig

SMALL = FaceConfig(size=96)


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
                                                                   [skimage.data.coffee()] * 2), onset=1),
    ]
    return new_sample_table([dict(dataset="casme2", emotion="happiness", **r) for r in rows])


def test_preprocess_caches_clips_and_ends_with_a_failure_summary(table, tmp_path):
    with pytest.warns(UserWarning):
        report = preprocess(table, tmp_path, SMALL)
    assert [r.status for r in report.results] == ["aligned", "aligned", "aligned", "failed"]
    failures = report.failures
    assert failures["sample_id"].tolist() == ["casme2/sub03/EP03_01"]
    assert failures["error_kind"].tolist() == ["face-not-found"]
    assert "frame=img1.jpg" in failures["message"][0]
    summary = json.loads((report.cache_dir / "summary.json").read_text())
    assert summary["aligned"] == 3 and summary["failed"] == 1 and summary["frames_aligned"] == 3 + 3 + 2
    assert summary["warnings"] == {"face-not-found": 1, "several-faces": 1}
    assert (report.cache_dir / "failures.csv").read_text().count("casme2/sub03/EP03_01") == 1

    clip = load_clip(tmp_path, "casme2/sub01/EP01_02", SMALL)
    assert isinstance(clip, AlignedClip)
    assert clip.frames.shape == (3, 96, 96, 3) and clip.frames.dtype == np.uint8
    assert clip.frame_numbers == [10, 11, 12] and clip.landmarks.shape == (68, 2)
    assert Path(clip.frame_paths[0]).name == "img10.jpg"
    assert clip.config_hash == SMALL.config_hash()


def test_rerun_reuses_cache_and_a_new_config_never_mixes(table, tmp_path):
    with pytest.warns(UserWarning):
        preprocess(table, tmp_path, SMALL)
    before = load_clip(tmp_path, "casme2/sub01/EP01_01", SMALL)
    stamp = (clip_dir(tmp_path, SMALL, "casme2/sub01/EP01_01") / "meta.json").stat().st_mtime_ns
    with pytest.warns(UserWarning):
        again = preprocess(table, tmp_path, SMALL)
    assert [r.status for r in again.results] == ["cached", "cached", "cached", "failed"]
    assert (clip_dir(tmp_path, SMALL, "casme2/sub01/EP01_01") / "meta.json").stat().st_mtime_ns == stamp

    grey = FaceConfig(size=96, color="grey")
    assert grey.config_hash() != SMALL.config_hash()
    with pytest.warns(UserWarning):
        other = preprocess(table, tmp_path, grey)
    assert other.cache_dir != cache_dir(tmp_path, SMALL)
    assert [r.status for r in other.results][:3] == ["aligned"] * 3
    assert load_clip(tmp_path, "casme2/sub01/EP01_01", grey).frames.shape == (3, 96, 96)
    assert np.array_equal(load_clip(tmp_path, "casme2/sub01/EP01_01", SMALL).frames, before.frames)


def test_interrupted_run_resumes_only_the_unfinished_clip(table, tmp_path):
    with pytest.warns(UserWarning):
        preprocess(table, tmp_path, SMALL)
    # A run killed mid-clip leaves frames but no meta.json (written last).
    (clip_dir(tmp_path, SMALL, "casme2/sub01/EP01_02") / "meta.json").unlink()
    with pytest.warns(UserWarning):
        resumed = preprocess(table, tmp_path, SMALL)
    assert [r.status for r in resumed.results] == ["cached", "aligned", "cached", "failed"]


def test_another_release_with_the_same_sample_ids_never_reuses_the_cache(table, tmp_path):
    row = table.iloc[:1]
    preprocess(row, tmp_path / "cache", SMALL)
    first = load_clip(tmp_path / "cache", "casme2/sub01/EP01_01", SMALL)
    # A second release in another folder, same ids and annotations, other frames (the first clip played backwards).
    images = [cv2.imread(p)[:, :, ::-1] for p in row.iloc[0]["frames"]][::-1]
    other = row.copy()
    other.at[other.index[0], "frames"] = _write_clip(tmp_path / "release2", "sub01", "EP01_01", images)
    report = preprocess(other, tmp_path / "cache", SMALL)
    assert [r.status for r in report.results] == ["aligned"]
    second = load_clip(tmp_path / "cache", "casme2/sub01/EP01_01", SMALL)
    assert second.frame_paths == other.iloc[0]["frames"] and not np.array_equal(second.frames, first.frames)
    assert [r.status for r in preprocess(other, tmp_path / "cache", SMALL).results] == ["cached"]
    # The same paths, rewritten in place (a release regenerated with another seed), are not reused either.
    path = other.iloc[0]["frames"][1]
    cv2.imwrite(path, cv2.imread(path)[::-1])
    assert [r.status for r in preprocess(other, tmp_path / "cache", SMALL).results] == ["aligned"]


def test_two_workers_give_the_same_clips_as_one(table, tmp_path):
    serial = preprocess(table.iloc[:2], tmp_path / "serial", SMALL, workers=1)
    parallel = preprocess(table.iloc[:2], tmp_path / "parallel", SMALL, workers=2)
    assert [r.sample_id for r in parallel.results] == [r.sample_id for r in serial.results]
    assert [r.status for r in parallel.results] == ["aligned", "aligned"]
    for sample_id in table["sample_id"][:2]:
        a, b = load_clip(tmp_path / "serial", sample_id, SMALL), load_clip(tmp_path / "parallel", sample_id, SMALL)
        assert np.array_equal(a.frames, b.frames) and np.allclose(a.transform.matrix, b.transform.matrix)


class MeanFrameStage:
    """A stand-in for a motion stage: writes the mean aligned frame, counts its calls."""

    name = "mean"
    calls = 0

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def config_hash(self) -> str:
        return f"scale{self.scale}"

    def __call__(self, clip: AlignedClip, out_dir: Path) -> None:
        type(self).calls += 1
        np.save(out_dir / "mean.npy", clip.frames.mean(axis=0) * self.scale)


def test_later_stage_runs_once_per_clip_and_reruns_when_its_config_changes(table, tmp_path):
    rows = table.iloc[:1]
    MeanFrameStage.calls = 0
    preprocess(rows, tmp_path, SMALL, stages=[MeanFrameStage()])
    preprocess(rows, tmp_path, SMALL, stages=[MeanFrameStage()])
    assert MeanFrameStage.calls == 1
    folder = clip_dir(tmp_path, SMALL, rows["sample_id"].iloc[0])
    mean = np.load(stage_dir(folder, MeanFrameStage()) / "mean.npy")
    assert np.allclose(mean, load_clip(tmp_path, rows["sample_id"].iloc[0], SMALL).frames.mean(axis=0))
    report = preprocess(rows, tmp_path, SMALL, stages=[MeanFrameStage(scale=2.0)])
    assert MeanFrameStage.calls == 2
    assert report.results[0].status == "cached" and report.results[0].stages_run == ["mean"]


def test_piecewise_affine_clip_round_trips_through_the_cache(table, tmp_path):
    config = FaceConfig(size=64, align="piecewise-affine", span="onset-apex")
    preprocess(table.iloc[:1], tmp_path, config)
    clip = load_clip(tmp_path, table["sample_id"].iloc[0], config)
    assert clip.frames.shape == (2, 64, 64, 3)
    assert clip.transform.kind == "piecewise-affine"
    assert np.allclose(clip.transform.apply(clip.source_landmarks), clip.landmarks, atol=1e-3)


def test_workers_must_be_positive(table, tmp_path):
    with pytest.raises(ValueError, match="workers"):
        preprocess(table, tmp_path, SMALL, workers=0)


def test_per_frame_mode_caches_one_transform_and_landmark_set_per_frame(table, tmp_path):
    config = FaceConfig(size=64, mode="per-frame")
    preprocess(table.iloc[:1], tmp_path, config)
    clip = load_clip(tmp_path, table["sample_id"].iloc[0], config)
    assert len(clip.transforms) == 3 and clip.frame_landmarks.shape == (3, 68, 2)
    assert not np.allclose(clip.transforms[0].matrix, clip.transforms[2].matrix)

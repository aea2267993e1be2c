"""The clip protocol on real video: one transform fitted on the reference frame, applied to every frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from merkit.datasets.table import new_sample_table
from merkit.errors import DataError
from merkit.face.align import eye_centres
from merkit.face.clip import FaceConfig, align_frames, align_sample

VIDEO_FRAMES = list(range(0, 37, 6))  # the head turns by about 40 px over frames 0-36
BACKGROUND = (200.0, 200.0)  # a point on the static wooden wall, left of the woman


@pytest.fixture(scope="module")
def video_frames(shared_data) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(shared_data / "faces" / "WolfgangLanger_Pexels.mp4"))
    frames = []
    for index in range(VIDEO_FRAMES[-1] + 1):
        ok, frame = capture.read()
        assert ok, f"cannot read frame {index}"
        if index in VIDEO_FRAMES:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def _patch_shift(a: np.ndarray, b: np.ndarray, centre: np.ndarray, half: int = 24) -> float:
    """Translation (pixels) between two grey images around ``centre``, by phase correlation."""
    x, y = np.round(centre).astype(int)
    pa = np.float32(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)[y - half:y + half, x - half:x + half])
    pb = np.float32(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)[y - half:y + half, x - half:x + half])
    (dx, dy), _ = cv2.phaseCorrelate(pa, pb, cv2.createHanningWindow(pa.shape[::-1], cv2.CV_32F))
    return float(np.hypot(dx, dy))


# A wide crop, so that the wall behind the woman is inside the aligned frame.
WIDE = dict(crop="landmarks", margin=1.0, size=320)


def test_clip_transform_keeps_static_background_point_fixed_across_frames(video_frames):
    clip = align_frames(video_frames, FaceConfig(**WIDE), reference_index=0)
    assert len(clip.transforms) == 1
    point = clip.transform.apply(np.array([BACKGROUND]))[0]
    assert 24 <= point.min() and point.max() < 320 - 24  # the wall point is well inside the aligned frame
    shifts = [_patch_shift(clip.frames[0], frame, point) for frame in clip.frames[1:]]
    assert max(shifts) < 0.5, shifts


def test_per_frame_refitting_moves_the_background_unlike_the_clip_transform(video_frames):
    clip = align_frames(video_frames, FaceConfig(**WIDE, mode="per-frame"), reference_index=0)
    assert len(clip.transforms) == len(video_frames)
    assert clip.frame_landmarks.shape == (len(video_frames), 68, 2)
    point = clip.transforms[0].apply(np.array([BACKGROUND]))[0]
    shifts = [_patch_shift(clip.frames[0], frame, point) for frame in clip.frames[1:]]
    # Following the head drags the wall along: several pixels, where the clip protocol keeps it still.
    assert max(shifts) > 3.0, shifts


def test_reference_frame_decides_the_transform(video_frames):
    config = FaceConfig(crop="eyes")  # this crop depends on the eyes only, so they land on fixed output points
    on_first = align_frames(video_frames, config, reference_index=0)
    on_last = align_frames(video_frames, config, reference_index=len(video_frames) - 1)
    assert on_first.reference_index == 0 and on_last.reference_index == len(video_frames) - 1
    # The head moved between the two reference frames, so the two clip transforms differ ...
    assert np.abs(on_first.transform.matrix - on_last.transform.matrix)[:, 2].max() > 5
    # ... and each puts the eyes of its own reference frame on the same template points.
    assert np.allclose(eye_centres(on_first.landmarks), eye_centres(on_last.landmarks), atol=1e-3)


def test_grey_output_has_no_channel_axis_and_requested_size(video_frames):
    clip = align_frames(video_frames[:2], FaceConfig(color="grey", size=112))
    assert clip.frames.shape == (2, 112, 112) and clip.frames.dtype == np.uint8


@pytest.fixture()
def sample_row(tmp_path, video_frames):
    folder = tmp_path / "sub01" / "EP01_01"
    folder.mkdir(parents=True)
    paths = []
    for number, frame in zip(range(40, 40 + len(video_frames)), video_frames):
        path = folder / f"img{number}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    table = new_sample_table([dict(dataset="casme2", subject="sub01", sample="EP01_01", emotion="happiness",
                                   onset=41, apex=43, offset=45, frames=paths)])
    return table.iloc[0]


def test_sample_is_fitted_on_its_onset_and_cut_to_the_span(sample_row):
    clip = align_sample(sample_row, FaceConfig(span="onset-apex"))
    assert clip.frame_numbers == [41, 42, 43]
    assert clip.reference_index == 0  # the onset
    assert clip.sample_id == "casme2/sub01/EP01_01"
    whole = align_sample(sample_row, FaceConfig(reference="apex"))
    assert whole.frame_numbers == list(range(40, 47))
    assert whole.frame_numbers[whole.reference_index] == 43


def test_span_needing_missing_annotation_raises_naming_the_sample(sample_row):
    row = sample_row.copy()
    row["apex"] = None
    with pytest.raises(DataError, match="sample=EP01_01"):
        align_sample(row, FaceConfig(span="onset-apex"))


def test_frame_without_number_raises_naming_the_sample(sample_row, tmp_path):
    row = sample_row.copy()
    row["frames"] = [str(tmp_path / "frame.jpg")]
    with pytest.raises(DataError, match="sample=EP01_01"):
        align_sample(row)


def test_sample_without_onset_is_fitted_on_its_first_frame_with_a_note(sample_row):
    row = sample_row.copy()
    row["onset"] = None
    clip = align_sample(row, FaceConfig(size=64))
    assert clip.reference_index == 0
    assert [n.split(":")[0] for n in clip.notes] == ["reference-fallback"]


def test_annotated_onset_missing_from_the_frames_is_an_error(sample_row):
    row = sample_row.copy()
    row["onset"] = 30
    with pytest.raises(DataError, match=r"onset frame 30 is not among the sample's frames.*sample=EP01_01"):
        align_sample(row)

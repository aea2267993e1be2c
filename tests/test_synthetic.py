"""The synthetic micro-expression generator: layout, coding sheet, ground truth, motion model, determinism."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from merkit.datasets.schemes import get_scheme
from merkit.datasets.registry import load_dataset
from merkit.synthetic import CLASSES, SHEET_COLUMNS, SHEET_NAME, au_field, generate, intensity_profile


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("synthetic") / "out"
    return root, generate(root, subjects=2, clips_per_class=1, seed=3, duration=(15, 18))


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(small_set, tmp_path):
    root, _ = small_set
    generate(tmp_path / "again", subjects=2, clips_per_class=1, seed=3, duration=(15, 18))
    first, second = _files(root), _files(tmp_path / "again")
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []


def test_subjects_rendered_in_parallel_give_the_same_files_and_table(small_set, tmp_path):
    """``workers=2`` renders the subjects as Ray tasks, in any order; the driver writes every file, and each
    subject draws from its own generators, so the release is the one a single process writes."""
    root, table = small_set
    parallel = generate(tmp_path / "parallel", subjects=2, clips_per_class=1, seed=3, duration=(15, 18), workers=2)
    first, second = _files(root), _files(tmp_path / "parallel")
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []
    relative = lambda t, r: [[Path(f).relative_to(r.resolve()).as_posix() for f in fr] for fr in t["frames"]]  # noqa: E731
    assert relative(parallel, tmp_path / "parallel") == relative(table, root)
    assert parallel.drop(columns="frames").equals(table.drop(columns="frames"))


def test_another_seed_gives_other_frames(small_set, tmp_path):
    root, table = small_set
    other = generate(tmp_path / "other", subjects=2, clips_per_class=1, seed=4, duration=(15, 18))
    assert _files(root)[Path(table.frames[0][0]).relative_to(root.resolve()).as_posix()] != \
        Path(other.frames[0][0]).read_bytes()


def test_frames_follow_the_casme2_layout_from_onset_to_offset(small_set):
    root, table = small_set
    for row in table.itertuples():
        names = [Path(p).relative_to(root.resolve()).as_posix() for p in row.frames]
        assert all(re.fullmatch(r"sub\d\d/EP\d\d_\d\d/img\d+\.jpg", n) for n in names)
        numbers = [int(re.search(r"img(\d+)", n).group(1)) for n in names]
        assert numbers == list(range(row.onset, row.offset + 1))
        assert 15 <= len(numbers) <= 18 and row.onset < row.apex < row.offset


def test_coding_sheet_has_the_official_casme2_columns_and_one_row_per_clip(small_set):
    root, table = small_set
    ws = openpyxl.load_workbook(root / SHEET_NAME).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == SHEET_COLUMNS
    assert SHEET_COLUMNS == ("Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                             "Action Units", "Estimated Emotion")
    body = {(f"sub{r[0]}", r[1]): r for r in rows[1:]}
    assert len(body) == len(table)
    for row in table.itertuples():
        sheet = body[(row.subject, row.sample)]
        assert sheet[3:6] == (row.onset, row.apex, row.offset)
        assert (str(sheet[7]), sheet[8]) == (row.action_units, row.emotion)


def test_every_class_is_generated_and_labelled_by_the_megc2019_scheme(small_set):
    _, table = small_set
    labelled = get_scheme("megc2019-3class").apply(table)
    assert len(labelled) == len(table) == 2 * len(CLASSES)
    names = [get_scheme("megc2019-3class").classes[k] for k in labelled["label"]]
    assert names == list(labelled["label_class"])
    assert sorted(table.groupby("subject")["label_class"].apply(sorted).iloc[0]) == sorted(CLASSES)


def test_the_release_loads_back_through_the_dataset_registry_as_generated(small_set):
    root, table = small_set
    loaded = load_dataset("synthetic", root)
    cols = ["sample_id", "subject_id", "emotion", "onset", "apex", "offset", "action_units", "label_class"]
    assert loaded[cols].equals(table[cols])
    assert list(loaded["frames"]) == list(table["frames"])


def test_expression_moves_the_apex_frame_and_zero_amplitude_does_not(tmp_path):
    """Onset and apex differ in the face far more with the expression than with amplitude 0 (nuisances only)."""
    diffs = {}
    for scale in (1.0, 0.0):
        t = generate(tmp_path / str(scale), subjects=1, clips_per_class=1, seed=1, amplitude_scale=scale,
                     duration=(15, 16))
        row = t.iloc[0]
        import cv2

        on = cv2.imread(row.frames[0], cv2.IMREAD_GRAYSCALE).astype(float)
        ap = cv2.imread(row.frames[row.apex - row.onset], cv2.IMREAD_GRAYSCALE).astype(float)
        diffs[scale] = np.abs(ap - on).mean()
    assert diffs[1.0] > 1.05 * diffs[0.0]



@pytest.fixture(scope="module")
def face_landmarks() -> np.ndarray:
    from merkit.synthetic import FRAME_SIZE, default_face, make_subject

    subject = make_subject("sub01", default_face(), "astronaut", np.random.default_rng(0), FRAME_SIZE)
    return subject.landmarks


@pytest.mark.parametrize("au, points, direction", [
    (1, [21, 22], "up"), (2, [17, 26], "up"), (4, [21, 22], "down"), (15, [48, 54], "down"),
    (17, [57], "up"), (26, [8], "down"), (45, [37, 43], "down")])
def test_action_units_push_their_landmarks_the_facs_way(face_landmarks, au, points, direction):
    field = au_field(au, face_landmarks, (340, 280))
    assert np.isclose(np.linalg.norm(field, axis=-1).max(), 1.0)
    for i in points:
        x, y = np.round(face_landmarks[i]).astype(int)
        dy = field[y, x, 1]
        assert (dy < -0.3) if direction == "up" else (dy > 0.3)
    far = np.round(face_landmarks[8 if au in (1, 2, 4, 45) else 19]).astype(int)
    assert np.linalg.norm(field[far[1], far[0]]) < 0.05


def test_lip_corner_puller_moves_corners_up_and_apart(face_landmarks):
    field = au_field(12, face_landmarks, (340, 280))
    (lx, ly), (rx, ry) = np.round(face_landmarks[[48, 54]]).astype(int)
    assert field[ly, lx, 0] < -0.3 and field[ry, rx, 0] > 0.3
    assert field[ly, lx, 1] < -0.3 and field[ry, rx, 1] < -0.3


def test_intensity_rises_from_onset_to_apex_and_falls_to_the_residual():
    profile = intensity_profile(20, 7, residual=0.2)
    assert profile[0] == 0 and profile[7] == 1 and np.isclose(profile[-1], 0.2)
    assert np.all(np.diff(profile[:8]) > 0) and np.all(np.diff(profile[7:]) < 0)


def test_user_faces_are_cycled_over_subjects(tmp_path):
    from skimage import data
    import cv2

    face = tmp_path / "faces" / "me.png"
    face.parent.mkdir()
    cv2.imwrite(str(face), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    table = generate(tmp_path / "out", subjects=2, clips_per_class=1, seed=0, faces=[face.parent], duration=(15, 15))
    assert set(table["face"]) == {"me.png"}


def test_missing_face_image_is_a_clear_error(tmp_path):
    from merkit.errors import DataError

    with pytest.raises(DataError, match="not found"):
        generate(tmp_path / "out", subjects=1, clips_per_class=1, faces=[tmp_path / "nobody.jpg"])


def test_casme2_loader_reads_the_synthetic_release_unchanged(small_set):
    from merkit.datasets import casme2
    root, table = small_set
    loaded = casme2.load(root)
    cols = ["subject", "sample", "emotion", "onset", "apex", "offset", "action_units"]
    mine = table.sort_values(["subject", "sample"]).reset_index(drop=True)
    theirs = loaded.sort_values(["subject", "sample"]).reset_index(drop=True)
    assert theirs[cols].equals(mine[cols])
    assert [list(map(str, f)) for f in theirs["frames"]] == [list(map(str, f)) for f in mine["frames"]]

import cv2
import numpy as np
import pandas as pd
import pytest

from merkit.inputs.composite import read_composite
from merkit.errors import DataError


def write_folder(root, rows, image=None):
    (root / "flow").mkdir(parents=True, exist_ok=True)
    for r in rows:
        rgb = image if image is not None else np.full((28, 28, 3), 100, np.uint8)
        cv2.imwrite(str(root / r["flow"]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)


def row(dataset="casme2", subject="sub01", sample="EP01", label=0, emotion="negative"):
    return {"dataset": dataset, "subject": subject, "sample": sample, "label": label, "emotion": emotion,
            "flow": f"flow/{dataset}_{subject}_{sample}.png"}


def test_composite_loads_with_qualified_subjects(composite_dir):
    fs = read_composite(composite_dir)
    assert fs.inputs["flow"].shape == (442, 3, 28, 28)
    assert fs.table["subject_id"].nunique() == 68
    assert fs.table.groupby("dataset")["sample_id"].count().to_dict() == {"casme2": 145, "samm": 133, "smic": 164}
    assert fs.table["label"].value_counts().sort_index().tolist() == [250, 109, 83]
    assert float(fs.inputs["flow"].min()) >= 0.0 and float(fs.inputs["flow"].max()) <= 1.0


def test_channels_are_read_in_rgb_order_and_can_be_reordered(tmp_path):
    rgb = np.zeros((28, 28, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30  # R = u, G = v, B = strain
    write_folder(tmp_path, [row()], rgb)
    fs = read_composite(tmp_path)
    assert [round(float(fs.inputs["flow"][0, c, 0, 0]) * 255) for c in range(3)] == [10, 20, 30]
    assert fs.meta["flow_channels"] == ["u", "v", "strain"]
    fs = read_composite(tmp_path, channels=("strain", "u", "v"))
    assert [round(float(fs.inputs["flow"][0, c, 0, 0]) * 255) for c in range(3)] == [30, 10, 20]


def test_same_subject_name_in_two_datasets_stays_two_subjects(tmp_path):
    write_folder(tmp_path, [row("casme2", "s01", "a"), row("smic", "s01", "a")])
    fs = read_composite(tmp_path)
    assert sorted(fs.table["subject_id"]) == ["casme2/s01", "smic/s01"]


def test_missing_file_names_the_sample(tmp_path):
    write_folder(tmp_path, [row()])
    (tmp_path / "flow" / "casme2_sub01_EP01.png").unlink()
    with pytest.raises(DataError, match="sample=EP01"):
        read_composite(tmp_path)


def test_grey_image_is_rejected_for_its_channel_count(tmp_path):
    write_folder(tmp_path, [row()])
    cv2.imwrite(str(tmp_path / "flow" / "casme2_sub01_EP01.png"), np.zeros((28, 28), np.uint8))
    with pytest.raises(DataError, match="1 channels"):
        read_composite(tmp_path)


def test_duplicate_sample_ids_are_rejected(tmp_path):
    write_folder(tmp_path, [row(), row()])
    with pytest.raises(DataError, match="duplicate"):
        read_composite(tmp_path)


def test_label_must_agree_with_emotion_and_scheme(tmp_path):
    write_folder(tmp_path, [row(label=1, emotion="negative")])
    with pytest.raises(DataError, match="disagrees"):
        read_composite(tmp_path)
    write_folder(tmp_path, [row(label=0, emotion="joy")])
    with pytest.raises(DataError, match="not in class scheme"):
        read_composite(tmp_path)


def _face_crop(shift: int = 0) -> np.ndarray:
    """A square grey crop around the astronaut's face, the face moved ``shift`` px to the left within it."""
    import skimage

    from merkit.face.landmarks import detect_landmarks

    grey = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    landmarks, _, _ = detect_landmarks(grey)
    cx, cy = landmarks.mean(0).astype(int)
    half = 90
    x0, y0 = cx - half + shift, cy - half
    return np.ascontiguousarray(grey[y0:y0 + 2 * half, x0:x0 + 2 * half])


def test_au_boxes_come_from_landmarks_fitted_on_each_apex_crop_and_follow_the_face(tmp_path):
    from merkit.face.regions import AU_REGION_NAMES

    rows = [row(sample="a"), row(sample="b")]
    for r, shift in zip(rows, (0, 18)):
        r["apex"] = f"apex/{r['sample']}.png"
        (tmp_path / "apex").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / r["apex"]), _face_crop(shift))
    write_folder(tmp_path, rows)
    fs = read_composite(tmp_path, with_apex=True, apex_size=56, with_au_boxes=True)
    boxes = fs.inputs["au_boxes"].numpy()
    assert boxes.shape == (2, 9, 4) and boxes.dtype == np.float32
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0
    name = list(AU_REGION_NAMES)
    left, right = boxes[0, name.index("R1L")], boxes[0, name.index("R1R")]
    assert left[0] < right[0]  # the image's left brow box is left of the right one
    assert boxes[0, name.index("R6"), 1] > boxes[0, name.index("R2"), 1]  # mouth below the brows
    # The face sits 18 px further left in crop b (180 px side): the central boxes move left by about 0.1.
    moved = boxes[1, name.index("R4"), 0] - boxes[0, name.index("R4"), 0]
    assert -0.13 < moved < -0.07
    assert fs.meta["diagnostics"] == {}


def test_a_crop_where_no_face_is_detected_is_counted_and_still_gets_boxes(tmp_path):
    r = row()
    r["apex"] = "apex/blank.png"
    (tmp_path / "apex").mkdir()
    cv2.imwrite(str(tmp_path / r["apex"]), np.full((64, 64), 128, np.uint8))
    write_folder(tmp_path, [r])
    with pytest.warns(UserWarning, match=r"face-not-detected.*dataset=casme2, subject=sub01, sample=EP01"):
        fs = read_composite(tmp_path, with_au_boxes=True)
    assert fs.inputs["au_boxes"].shape == (1, 9, 4)
    assert fs.meta["diagnostics"] == {"face-not-detected": 1}
    assert "apex" not in fs.inputs and any("1 of 1 crops" in note for note in fs.notes)

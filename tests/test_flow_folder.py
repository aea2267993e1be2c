import cv2
import numpy as np
import pandas as pd
import pytest

from merkit.datasets.flow_folder import load_flow_folder
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
    fs = load_flow_folder(composite_dir)
    assert fs.inputs["flow"].shape == (442, 3, 28, 28)
    assert fs.table["subject_id"].nunique() == 68
    assert fs.table.groupby("dataset")["sample_id"].count().to_dict() == {"casme2": 145, "samm": 133, "smic": 164}
    assert fs.table["label"].value_counts().sort_index().tolist() == [250, 109, 83]
    assert float(fs.inputs["flow"].min()) >= 0.0 and float(fs.inputs["flow"].max()) <= 1.0


def test_channels_are_read_in_rgb_order_and_can_be_reordered(tmp_path):
    rgb = np.zeros((28, 28, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30  # R = u, G = v, B = strain
    write_folder(tmp_path, [row()], rgb)
    fs = load_flow_folder(tmp_path)
    assert [round(float(fs.inputs["flow"][0, c, 0, 0]) * 255) for c in range(3)] == [10, 20, 30]
    assert fs.meta["flow_channels"] == ["u", "v", "strain"]
    fs = load_flow_folder(tmp_path, channels=("strain", "u", "v"))
    assert [round(float(fs.inputs["flow"][0, c, 0, 0]) * 255) for c in range(3)] == [30, 10, 20]


def test_same_subject_name_in_two_datasets_stays_two_subjects(tmp_path):
    write_folder(tmp_path, [row("casme2", "s01", "a"), row("smic", "s01", "a")])
    fs = load_flow_folder(tmp_path)
    assert sorted(fs.table["subject_id"]) == ["casme2/s01", "smic/s01"]


def test_missing_file_names_the_sample(tmp_path):
    write_folder(tmp_path, [row()])
    (tmp_path / "flow" / "casme2_sub01_EP01.png").unlink()
    with pytest.raises(DataError, match="sample=EP01"):
        load_flow_folder(tmp_path)


def test_grey_image_is_rejected_for_its_channel_count(tmp_path):
    write_folder(tmp_path, [row()])
    cv2.imwrite(str(tmp_path / "flow" / "casme2_sub01_EP01.png"), np.zeros((28, 28), np.uint8))
    with pytest.raises(DataError, match="1 channels"):
        load_flow_folder(tmp_path)


def test_duplicate_sample_ids_are_rejected(tmp_path):
    write_folder(tmp_path, [row(), row()])
    with pytest.raises(DataError, match="duplicate"):
        load_flow_folder(tmp_path)


def test_label_must_agree_with_emotion_and_scheme(tmp_path):
    write_folder(tmp_path, [row(label=1, emotion="negative")])
    with pytest.raises(DataError, match="disagrees"):
        load_flow_folder(tmp_path)
    write_folder(tmp_path, [row(label=0, emotion="joy")])
    with pytest.raises(DataError, match="not in class scheme"):
        load_flow_folder(tmp_path)

"""The composite format: writing it from raw clips (write_composite, ``merkit export-flow``) and reading it back."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data

from merkit.datasets.table import new_sample_table
from merkit.errors import ConfigError, DataError, Diagnostics
from merkit.face.clip import FaceConfig
from merkit.inputs import Preprocessing
from merkit.inputs.composite import MANIFEST_COLUMNS, read_composite, write_composite
from merkit.motion.stage import MotionConfig


def record(size: int = 112, method: str = "farneback", **motion) -> Preprocessing:
    return Preprocessing(FaceConfig(size=size), MotionConfig(method=method, **motion))


FAST = record()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> pd.DataFrame:
    from merkit.synthetic import generate

    return generate(tmp_path_factory.mktemp("synthetic"), subjects=2, clips_per_class=1, duration=(15, 20), seed=3)


def _stretch_clip(folder: Path) -> pd.DataFrame:
    """One sample whose apex is the onset stretched horizontally and squeezed vertically about the centre.

    So u = a (x - cx) grows to the right and v = -a (y - cy) shrinks downwards: R (u) must rise with x and G (v)
    fall with y in the exported image.
    """
    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    h, w = face.shape[:2]
    a = 0.02
    m = np.float32([[1 + a, 0, -a * w / 2], [0, 1 - a, a * h / 2]])
    apex = cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    clip = folder / "s1" / "clip1"
    clip.mkdir(parents=True)
    cv2.imwrite(str(clip / "img1.png"), face)
    cv2.imwrite(str(clip / "img2.png"), apex)
    return new_sample_table([dict(dataset="toy", subject="s1", sample="clip1", emotion="happiness", onset=1,
                                  apex=2, offset=2, frames=[str(clip / "img1.png"), str(clip / "img2.png")])])


def test_exported_images_put_u_in_red_v_in_green_and_load_back_in_that_order(tmp_path):
    table = _stretch_clip(tmp_path / "raw")
    write_composite(table, tmp_path / "out", record(160))
    bgr = cv2.imread(str(tmp_path / "out" / "flow" / "toy_s1_clip1.png"))
    assert bgr.shape == (28, 28, 3)
    inner = slice(4, 24)
    xs, ys = np.meshgrid(np.arange(28), np.arange(28))
    red, green = bgr[..., 2].astype(float), bgr[..., 1].astype(float)
    assert np.corrcoef(red[inner, inner].ravel(), xs[inner, inner].ravel())[0, 1] > 0.8
    assert np.corrcoef(green[inner, inner].ravel(), ys[inner, inner].ravel())[0, 1] < -0.8
    features = read_composite(tmp_path / "out")
    np.testing.assert_allclose(features.inputs["flow"][0, 0].numpy() * 255, red, atol=1e-3)  # channel "u"
    np.testing.assert_allclose(features.inputs["flow"][0, 1].numpy() * 255, green, atol=1e-3)  # channel "v"


def test_export_round_trips_through_the_flow_folder_loader(synthetic, tmp_path):
    diagnostics = Diagnostics()
    manifest = write_composite(synthetic, tmp_path, FAST, diagnostics=diagnostics)
    features = read_composite(tmp_path, with_apex=True)
    assert len(features) == len(synthetic) == len(manifest)
    assert features.inputs["flow"].shape == (len(synthetic), 3, 28, 28)
    assert features.inputs["apex"].shape == (len(synthetic), 1, 112, 112)  # the aligned apex crop, face.size
    assert features.meta["preprocessing"] == FAST.to_dict()  # the folder's own record, from export.json
    expected = {"happiness": "positive", "surprise": "surprise", "disgust": "negative", "repression": "negative"}
    by_id = dict(zip(synthetic["sample_id"], synthetic["emotion"]))
    for row in features.table.itertuples():
        assert row.emotion == expected[by_id[row.sample_id]]
    for channel in range(3):  # each channel is stretched to the full 0..255 range per image
        flat = features.inputs["flow"][:, channel].flatten(1)
        assert np.allclose(flat.min(1).values.numpy(), 0) and np.allclose(flat.max(1).values.numpy(), 1)


def test_export_writes_the_composites_manifest_and_file_format(synthetic, tmp_path, composite_dir):
    write_composite(synthetic, tmp_path, FAST)
    ours = pd.read_csv(tmp_path / "manifest.csv")
    theirs = pd.read_csv(composite_dir / "manifest.csv")
    assert list(ours.columns) == list(theirs.columns) == list(MANIFEST_COLUMNS)
    assert set(ours["emotion"]) <= set(theirs["emotion"])
    names = zip(ours.flow, ours.dataset, ours.subject, ours["sample"])
    assert all(f == f"flow/{d}_{s}_{n}.png" for f, d, s, n in names)
    for column, side in (("flow", 28), ("apex", 112)):
        mine = cv2.imread(str(tmp_path / ours[column][0]), cv2.IMREAD_UNCHANGED)
        ref = cv2.imread(str(composite_dir / theirs[column][0]), cv2.IMREAD_UNCHANGED)
        assert mine.shape[2:] == ref.shape[2:] and mine.dtype == ref.dtype and mine.shape[:2] == (side, side)


def test_rerun_with_the_same_record_reuses_the_images_and_another_record_never_mixes(synthetic, tmp_path):
    write_composite(synthetic, tmp_path, FAST)
    png = next((tmp_path / "flow").glob("*.png"))
    stamp = png.stat().st_mtime_ns
    write_composite(synthetic, tmp_path, FAST)
    assert png.stat().st_mtime_ns == stamp
    other = record(method="dis")
    with pytest.raises(DataError, match="other preprocessing"):
        write_composite(synthetic, tmp_path, other)
    with pytest.raises(DataError, match="exported with preprocessing"):
        read_composite(tmp_path, record=other)  # a config that says otherwise than the folder is refused
    write_composite(synthetic, tmp_path, other, overwrite=True)
    assert json.loads((tmp_path / "export.json").read_text())["record_hash"] == other.config_hash()
    assert read_composite(tmp_path, record=other).meta["preprocessing"] == other.to_dict()


def test_a_stopped_export_has_no_manifest_and_its_rerun_computes_only_what_it_had_not_written(synthetic,
                                                                                              tmp_path, monkeypatch):
    """The export records its written samples as it goes (here after every sample), so a run stopped after k of n
    samples leaves k reusable samples and no manifest; the rerun computes the other n - k, and the finished
    folder is the one an uninterrupted export writes."""
    import merkit.inputs.composite as composite

    monkeypatch.setattr(composite, "CHECKPOINT_S", 0.0)
    whole = tmp_path / "whole"
    write_composite(synthetic, whole, FAST)
    n = len(synthetic)

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    out = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        write_composite(synthetic, out, FAST, progress=stop_after_two)
    assert not (out / "manifest.csv").exists()
    with pytest.raises(DataError):
        read_composite(out)
    assert len(pd.read_csv(out / "provenance.csv")) == len(pd.read_csv(out / "sources.csv")) == 2
    computed = []
    real_task = composite._export_task
    monkeypatch.setattr(composite, "_export_task", lambda row, rec: computed.append(row["sample"]) or
                        real_task(row, rec))
    write_composite(synthetic, out, FAST)
    assert len(computed) == n - 2
    for name in ("manifest.csv", "provenance.csv", "sources.csv"):
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    for png in (whole / "flow").glob("*.png"):
        assert (out / "flow" / png.name).read_bytes() == png.read_bytes()


def test_only_min_max_onset_apex_flow_can_be_written_in_the_format(synthetic, tmp_path):
    with pytest.raises(ConfigError, match="normalise minmax"):
        write_composite(synthetic, tmp_path, record(normalise="none"))
    with pytest.raises(ConfigError, match="onset_apex_flow"):
        write_composite(synthetic, tmp_path, record(representations=("apex_minus_onset",)))


def test_missing_apex_is_spotted_and_recorded(synthetic, tmp_path):
    table = synthetic.head(2).copy()
    table["apex"] = pd.array([None, None], dtype="Int64")
    write_composite(table, tmp_path, FAST)
    provenance = pd.read_csv(tmp_path / "provenance.csv")
    assert list(provenance["apex_source"]) == ["spotted", "spotted"]
    for row, spotted in zip(synthetic.head(2).itertuples(), provenance["apex_frame"]):
        assert row.onset <= spotted <= row.offset
    with pytest.raises(DataError, match="no apex frame number"):
        write_composite(table, tmp_path / "strict", record(apex="annotated"), on_error="raise")


def test_failed_samples_raise_naming_the_sample_or_are_skipped_and_counted(synthetic, tmp_path):
    table = synthetic.head(2).copy()
    broken = table["sample"].iloc[1]
    table.at[1, "frames"] = [p for p in table["frames"].iloc[1] if not p.endswith(f"img{table['apex'].iloc[1]}.jpg")]
    with pytest.raises(DataError, match=broken):
        write_composite(table, tmp_path / "strict", FAST, on_error="raise")
    diagnostics = Diagnostics()
    with pytest.warns(UserWarning, match="flow-export-failed"):
        manifest = write_composite(table, tmp_path / "lenient", FAST, diagnostics=diagnostics)
    assert list(manifest["sample"]) == [table["sample"].iloc[0]]
    assert diagnostics.summary() == {"flow-export-failed": 1}


def test_two_workers_write_the_same_images_as_one(synthetic, tmp_path):
    table = synthetic.head(3)
    write_composite(table, tmp_path / "one", FAST)
    write_composite(table, tmp_path / "two", FAST, workers=2)
    for png in sorted((tmp_path / "one" / "flow").glob("*.png")):
        np.testing.assert_array_equal(cv2.imread(str(png)), cv2.imread(str(tmp_path / "two" / "flow" / png.name)))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one" / "manifest.csv"),
                                  pd.read_csv(tmp_path / "two" / "manifest.csv"))


def test_export_flow_command_writes_a_loadable_folder(synthetic, tmp_path):
    from typer.testing import CliRunner

    from merkit.cli import app

    root = Path(synthetic["frames"].iloc[0][0]).parents[2]
    result = CliRunner().invoke(app, ["export-flow", "synthetic", "--data", str(root), "--out", str(tmp_path),
                                      "--set", "data.motion.method=farneback", "--set", "data.face.size=112"])
    assert result.exit_code == 0, result.output
    features = read_composite(tmp_path)
    assert len(features) == len(synthetic) and features.meta["preprocessing"] == FAST.to_dict()
    # the export names its release, and for merkit synth data its seed, which a checkpoint's notes then carry
    source = json.loads((tmp_path / "export.json").read_text())["source"]
    assert source["dataset"] == "synthetic" and Path(source["path"]) == root.resolve()
    assert source["generator"] == json.loads((root / "generator.json").read_text())
    assert any("seed 3, 2 subjects x 1 clips per class" in n for n in features.notes), features.notes


def test_export_flow_command_reports_an_unknown_dataset_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from merkit.cli import app

    result = CliRunner().invoke(app, ["export-flow", "nosuchdataset", "--data", str(tmp_path), "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "nosuchdataset" in result.output

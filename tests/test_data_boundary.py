"""The data boundary: no model code sees an input its record does not describe (issue 30).

Ids are normalised where the sample table is built, so LOSO folds stay subject-disjoint whatever whitespace or Unicode
form a manifest writes a subject in; a manifest, an image, a checkpoint, a fold plan or a FeatureSet that disagrees
with what it describes is one line naming it, raised before anything trains.
"""

from __future__ import annotations

import hashlib
import tempfile
import unicodedata
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from merkit.checkpoint import Checkpoint
from merkit.config import load_config
from merkit.datasets.table import new_sample_table
from merkit.errors import CheckpointError, ConfigError, DataError, Diagnostics
from merkit.features import FeatureSet
from merkit.inputs.composite import read_composite
from merkit.inputs.record import Preprocessing
from merkit.models import build_model
from merkit.training.engine import cpu_state_dict
from merkit.training.loso import Fold, check_fold, make_folds
from merkit.training.runner import plan_units
from tests.helpers import toy_flow_features

CHEAP = settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
EMOTIONS = ("negative", "positive", "surprise")
# Letters with composed and decomposed forms (e with acute, n with tilde, A with ring) beside plain ones; every name
# starts with a letter that no pandas NA spelling starts with, so the CSV reads it back as text.
NAME = st.text(alphabet="bcdk019_-\u00e9\u00f1\u00c5", min_size=1, max_size=5)
PAD = st.sampled_from(["", " ", "  ", "\t"])
FORM = st.sampled_from(["NFC", "NFD"])


def norm(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text and "Traceback" not in text
    return text


@st.composite
def variant(draw, base: str) -> str:
    """``base`` as a manifest may write it: in NFC or NFD, with whitespace around it."""
    return draw(PAD) + unicodedata.normalize(draw(FORM), base) + draw(PAD)


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def write_manifest(root: Path, rows: list[dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def flow_row(dataset="casme2", subject="sub01", sample="EP01", label=0, flow="flow/a.png") -> dict:
    return {"dataset": dataset, "subject": subject, "sample": sample, "label": label, "emotion": EMOTIONS[label],
            "flow": flow}


# ------------------------------------------------------------------------------------------- 1. id normalisation

@st.composite
def manifests(draw) -> list[dict]:
    """Rows of a composite manifest whose ids are random names written in random whitespace and normal forms."""
    subjects = draw(st.lists(NAME, min_size=2, max_size=4, unique_by=norm))
    rows = []
    for i in range(draw(st.integers(min_value=2, max_value=10))):
        base = draw(st.sampled_from(subjects))
        label = draw(st.integers(0, 2))
        # "e<i>_" keeps the sample names distinct once normalised, whatever name follows it
        rows.append(flow_row(draw(variant("casme2")), draw(variant("s" + base)),
                             draw(variant(f"e{i}_" + draw(NAME))), label))
    assume(len({norm(r["subject"]) for r in rows}) >= 2)
    return rows


def changed_ids(rows: list[dict]) -> int:
    """The ids that normalisation changes: each dataset, subject (in its dataset) and sample (in its subject) name
    that differs from its normalised form, counted once."""
    changed = set()
    for r in rows:
        d, s = norm(r["dataset"]), norm(r["subject"])
        changed |= {("dataset", r["dataset"])} if r["dataset"] != d else set()
        changed |= {("subject", d, r["subject"])} if r["subject"] != s else set()
        changed |= {("sample", d, s, r["sample"])} if r["sample"] != norm(r["sample"]) else set()
    return len(changed)


@CHEAP
@given(rows=manifests())
def test_loso_folds_are_subject_disjoint_over_normalised_ids_and_each_changed_id_warns_once(rows):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_png(root / "flow" / "a.png", np.full((28, 28, 3), 7, np.uint8))
        write_manifest(root, rows)
        diagnostics = Diagnostics()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            features = read_composite(root, diagnostics=diagnostics)
    person = [(norm(r["dataset"]), norm(r["subject"])) for r in rows]  # the table keeps the manifest's row order
    for fold in make_folds(features.table, "loso"):
        train = {person[i] for i in fold.train_index}
        test = {person[i] for i in fold.test_index}
        assert not train & test, f"fold {fold.name} tests subjects it trains on: {train & test}"
    assert len(make_folds(features.table, "loso")) == len(set(person))
    assert diagnostics.summary().get("id-normalised", 0) == changed_ids(rows)
    assert features.meta["diagnostics"].get("id-normalised", 0) == changed_ids(rows)  # reaches the report


@CHEAP
@given(base=NAME, data=st.data())
def test_two_ids_that_merge_once_normalised_are_one_line_naming_both(base, data):
    first, second = data.draw(variant("e" + base)), data.draw(variant("e" + base))
    assume(first != second)
    rows = [{"dataset": "casme2", "subject": "sub01", "sample": name, "emotion": "negative"}
            for name in (first, second)]
    with pytest.raises(DataError) as error:
        new_sample_table(rows)
    text = one_line(error)
    assert repr(f"casme2/sub01/{first}") in text and repr(f"casme2/sub01/{second}") in text


# ------------------------------------------------------------------------------------------- 2. manifest cells

def test_an_empty_or_header_only_manifest_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "manifest.csv").write_bytes(b"")
    with pytest.raises(DataError) as error:
        read_composite(tmp_path)
    assert str(tmp_path / "manifest.csv") in one_line(error) and "empty" in str(error.value)
    (tmp_path / "manifest.csv").write_text("dataset,subject,sample,label,emotion,flow\n")
    with pytest.raises(DataError) as error:
        read_composite(tmp_path)
    assert str(tmp_path / "manifest.csv") in one_line(error) and "no samples" in str(error.value)


BAD_CELLS = [("label", ""), ("label", "1.5"), ("label", "x"), ("emotion", ""), ("emotion", "joyful"),
             ("emotion", "   "), ("flow", "")]


@CHEAP
@given(size=st.integers(1, 6), data=st.data())
def test_an_empty_or_unknown_cell_is_one_line_naming_the_file_line_and_sample(size, data):
    rows = [flow_row(subject=f"sub{i % 2}", sample=f"EP{i}", label=i % 3) for i in range(size)]
    bad = data.draw(st.integers(0, size - 1))
    column, value = data.draw(st.sampled_from(BAD_CELLS))
    rows[bad][column] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = write_manifest(Path(tmp), rows)
        with pytest.raises(DataError) as error:
            read_composite(tmp)
    text = one_line(error)
    assert f"{path} line {bad + 2}" in text and f"sample=EP{bad}" in text
    if value == "joyful":
        assert "did you mean 'joy'" in text or "not in class scheme" in text


# ------------------------------------------------------------------------------------------- 3. bit depth

@pytest.mark.parametrize("what", ["flow", "apex"])
def test_a_16_bit_image_is_refused_with_its_file_and_bit_depth(tmp_path, what):
    row = flow_row()
    row["apex"] = "apex/a.png"
    deep = (np.arange(28 * 28 * 3).reshape(28, 28, 3) * 80 % 65536).astype(np.uint16)
    write_png(tmp_path / "flow" / "a.png", deep if what == "flow" else np.zeros((28, 28, 3), np.uint8))
    write_png(tmp_path / "apex" / "a.png", deep[..., 0] if what == "apex" else np.zeros((28, 28), np.uint8))
    write_manifest(tmp_path, [row])
    with pytest.raises(DataError) as error:
        read_composite(tmp_path, with_apex=True)
    text = one_line(error)
    assert str(tmp_path / what / "a.png") in text and "16-bit" in text


# ------------------------------------------------------------------------------------------- 4. image size

@CHEAP
@given(sides=st.lists(st.sampled_from([28, 28, 28, 27, 32]), min_size=1, max_size=4))
def test_a_flow_image_of_another_size_than_the_record_is_refused_naming_file_and_sizes(sides):
    rows = [flow_row(subject=f"sub{i}", sample=f"EP{i}", flow=f"flow/{i}.png") for i in range(len(sides))]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, side in enumerate(sides):
            write_png(root / "flow" / f"{i}.png", np.full((side, side, 3), 50, np.uint8))
        write_manifest(root, rows)
        if all(side == 28 for side in sides):
            assert read_composite(root).inputs["flow"].shape == (len(sides), 3, 28, 28)
            return
        with pytest.raises(DataError) as error:
            read_composite(root)
    first = next(i for i, side in enumerate(sides) if side != 28)
    text = one_line(error)
    assert f"{first}.png is {sides[first]}x{sides[first]} px, expected 28x28" in text


def test_without_a_record_size_flow_images_must_match_the_first(tmp_path):
    from merkit.face.clip import FaceConfig
    from merkit.motion.stage import MotionConfig

    rows = [flow_row(sample="a", flow="flow/a.png"), flow_row(sample="b", flow="flow/b.png")]
    write_png(tmp_path / "flow" / "a.png", np.zeros((40, 40, 3), np.uint8))
    write_png(tmp_path / "flow" / "b.png", np.zeros((36, 36, 3), np.uint8))
    write_manifest(tmp_path, rows)
    with pytest.raises(DataError) as error:
        read_composite(tmp_path, record=Preprocessing(FaceConfig(), MotionConfig(size=None)))
    assert f"{tmp_path / 'flow' / 'b.png'} is 36x36 px, expected 40x40" in one_line(error)


# ------------------------------------------------------------------------------------------- 5. checkpoints

def _checkpoint(folder: Path, weights: dict) -> Path:
    config = load_config(None, ["model.name=ststnet", "model.preset=cpu"])
    return Checkpoint("ststnet", "cpu", {}, EMOTIONS, ("flow",), Preprocessing(), config).save(folder, weights)


@CHEAP
@given(classes=st.sampled_from([2, 3, 4, 5]), side=st.sampled_from([28, 28, 32, 56]),
       preset=st.sampled_from(["cpu", "cpu", "paper"]))
def test_a_checkpoint_whose_weights_disagree_with_its_record_names_the_folder_and_the_tensor(classes, side, preset):
    torch.manual_seed(0)
    weights = cpu_state_dict(build_model("ststnet", classes, preset, input_size=side))
    expected = build_model("ststnet", 3, "cpu").state_dict()
    differ = [k for k in expected if k not in weights or weights[k].shape != expected[k].shape]
    differ += [k for k in weights if k not in expected]
    with tempfile.TemporaryDirectory() as tmp:
        folder = _checkpoint(Path(tmp) / "ck", weights)
        if not differ:
            assert Checkpoint.load(folder)[0].classes == EMOTIONS
            return
        with pytest.raises(CheckpointError) as error:
            Checkpoint.load(folder)
    text = one_line(error)
    assert str(folder) in text and repr(differ[0]) in text


# ------------------------------------------------------------------------------------------- 6. folds

def test_loso_with_one_subject_is_refused_in_one_line():
    table = toy_flow_features(subjects=1, per_class=1).table
    with pytest.raises(DataError) as error:
        make_folds(table, "loso")
    assert one_line(error).startswith("LOSO needs at least two subjects, the data (toy) has 1")


@CHEAP
@given(subjects=st.integers(2, 4), empty=st.sampled_from(["train", "test"]), data=st.data())
def test_a_fold_with_an_empty_side_is_refused(subjects, empty, data):
    table = toy_flow_features(subjects=subjects, per_class=1).table
    rows = np.arange(len(table))
    some = np.array(sorted(data.draw(st.sets(st.sampled_from(list(rows)), min_size=1))), dtype=np.int64)
    none = np.array([], dtype=np.int64)
    fold = Fold(0, "train-test", none if empty == "train" else some, some if empty == "train" else none)
    with pytest.raises(DataError) as error:
        check_fold(table, fold)
    assert f"fold train-test has no {'training' if empty == 'train' else 'test'} samples" in one_line(error)


# ------------------------------------------------------------------------------------------- 7. inner selection

@settings(max_examples=100)
@given(subjects=st.integers(2, 6), k=st.integers(2, 6), split=st.sampled_from(["loso", "lodo"]))
def test_inner_selection_with_too_few_training_subjects_is_refused_before_any_unit(subjects, k, split):
    data = toy_flow_features(subjects=subjects, per_class=1)
    if split == "lodo":  # two datasets; the fold that holds out "b" trains on the subjects of "a"
        table = data.table.assign(dataset=["a" if s < "s01" else "b" for s in data.table["subject"]])
        data = FeatureSet(new_sample_table(table.drop(columns=["sample_id", "subject_id"]).to_dict("records")),
                          data.inputs, data.classes)
    config = load_config(None, ["protocol.selection=inner", f"protocol.inner_folds={k}", f"protocol.split={split}"])
    folds = make_folds(data.table, split)
    fewest = min(data.table.iloc[f.train_index]["subject_id"].nunique() for f in folds)
    with tempfile.TemporaryDirectory() as tmp:
        if fewest >= k:
            units = plan_units(config.resolve().protocol, data, Path(tmp))
            assert len(units) == len(folds) * len(config.protocol.seeds)
            return
        with pytest.raises(ConfigError) as error:
            plan_units(config.resolve().protocol, data, Path(tmp))
        assert not any(Path(tmp).iterdir())  # nothing was trained or written
    first = next(f for f in folds if data.table.iloc[f.train_index]["subject_id"].nunique() < k)
    text = one_line(error)
    count = data.table.iloc[first.train_index]["subject_id"].nunique()
    assert f"protocol.inner_folds = {k}" in text and f"fold {first.name} trains on {count} subject" in text


# ------------------------------------------------------------------------------------------- 8. inputs vs record

@CHEAP
@given(shape=st.tuples(st.sampled_from([1, 3]), st.sampled_from([28, 28, 24, 32]), st.sampled_from([28, 28, 30])),
       model=st.sampled_from(["ststnet", "mmnet"]))
def test_every_input_has_the_shape_its_record_describes_before_a_unit_trains(shape, model):
    toy = toy_flow_features(subjects=2, per_class=1)
    flow = torch.zeros((len(toy), *shape))
    data = FeatureSet(toy.table, {"flow": flow}, toy.classes, meta={"preprocessing": Preprocessing().to_dict()})
    config = load_config(None, [f"model.name={model}", "model.preset=cpu"])
    with tempfile.TemporaryDirectory() as tmp:
        if model == "ststnet" and shape[1:] == (28, 28):
            assert plan_units(config.resolve().protocol, data, Path(tmp))
            return
        with pytest.raises(DataError) as error:
            plan_units(config.resolve().protocol, data, Path(tmp))
    text = one_line(error)
    if model == "mmnet":  # takes apex_minus_onset and onset, which the data does not hold
        assert "['apex_minus_onset', 'onset']" in text and "does not provide" in text
    else:
        assert f"input 'flow' of the data (toy) is {tuple(shape)}".replace(",)", ")") in text
        assert "describes (?, 28, 28)" in text


def test_a_clip_whose_inputs_disagree_with_the_checkpoint_record_is_refused_at_predict(tmp_path):
    from merkit.predict import Predictor

    model = build_model("ststnet", 3, "cpu")
    predictor = Predictor(model, EMOTIONS, Preprocessing())
    ok = predictor.forward({"flow": np.zeros((3, 28, 28), np.float32)})[0]
    assert ok.shape == (3,)
    with pytest.raises(DataError) as error:
        predictor.forward({"flow": np.zeros((3, 32, 32), np.float32)})
    assert "input 'flow' of the clip's inputs is (3, 32, 32) per sample" in one_line(error)
    from merkit.features import check_inputs

    with pytest.raises(DataError, match="expected a floating-point dtype"):
        check_inputs({"flow": np.zeros((1, 3, 28, 28), np.int64)}, ["flow"], {"flow": (None, 28, 28)}, "x")


@pytest.mark.parametrize("color", ["grey", "rgb"])
def test_the_record_describes_the_shape_of_every_input_the_inputs_stage_builds(tmp_path, color):
    from merkit.face.clip import FaceConfig
    from merkit.training.check import check_features
    from merkit.inputs import build_inputs
    from merkit.motion.representations import REPRESENTATIONS
    from merkit.motion.stage import MotionConfig
    from merkit.synthetic import generate

    table = generate(tmp_path / "synthetic", subjects=1, clips_per_class=1, duration=(12, 14), seed=5).head(2)
    record = Preprocessing(FaceConfig(size=48, color=color, span="onset-offset"),
                           MotionConfig(representations=REPRESENTATIONS, method="farneback", size=12,
                                        long_term_frames=3, resample_length=4, jitter=1, ss_pairs=2))
    features = build_inputs(table, record, "casme2-5class", tmp_path / "cache")
    assert set(features.inputs) == set(record.input_keys) and features.meta["clips"]["failed"] == 0
    check_features(features, record.input_keys)  # passes: every shape is the one the record gives
    for key, shape in record.input_shapes().items():
        assert len(features.inputs[key].shape) == len(shape) + 1


# ------------------------------------------------------------------------------------------- valid inputs unchanged

#: sha256 of read_composite(composite, with_apex=True)'s tensors, sample ids and labels, as a9b6de1 reads them.
COMPOSITE_SHA256 = "9e228de8afb3b48f0405590d345735eac1f5f95ac3fceef949ebd65e063af8a8"


def test_the_real_composite_reads_exactly_as_before(composite_dir):
    features = read_composite(composite_dir, with_apex=True)
    digest = hashlib.sha256()
    for key in sorted(features.inputs):
        digest.update(key.encode())
        digest.update(features.inputs[key].numpy().tobytes())
    digest.update("\n".join(features.table["sample_id"]).encode())
    digest.update(features.table["label"].to_numpy().tobytes())
    assert digest.hexdigest() == COMPOSITE_SHA256
    assert features.meta["diagnostics"] == {}


@CHEAP
@given(base=NAME, data=st.data())
def test_a_table_built_around_new_sample_table_with_unnormalised_ids_is_refused(base, data):
    from merkit.datasets.table import validate_sample_table

    written = data.draw(variant("s" + base))
    table = new_sample_table([{"dataset": "casme2", "subject": "s" + base, "sample": "e1", "emotion": "negative"}])
    table["subject"] = written
    table["subject_id"] = "casme2/" + written
    table["sample_id"] = f"casme2/{written}/e1"
    if written == norm(written):
        assert validate_sample_table(table) is table
        return
    with pytest.raises(DataError, match="is not normalised"):
        validate_sample_table(table)

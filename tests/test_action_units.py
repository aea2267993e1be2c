"""Action units: the sheets' notations parsed (real rows of CASME II, SAMM, CAS(ME)^3 and MMEW, written 4DME rows,
and properties over generated strings), the paper's 21-AU vector built in the inputs stage, the join of AU sheets to
a flow folder's samples, the config keys, the preprocessing record, and CVA+FPF+AU end to end on a synthetic
release (oracle input, flagged)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from merkit.datasets.action_units import PAPER_AUS, ActionUnits, join_au_sheets, parse_action_units
from merkit.errors import CheckpointError, ConfigError, DataError, Diagnostics, Where
from merkit.inputs.record import Preprocessing

CASME2_SHEET = "annotations/casme2/CASME2-coding-20190701.xlsx"
SAMM_SHEET = "annotations/samm/SAMM_Micro_FACS_Codes_v2.xlsx"


def _sheet(shared_data, dataset: str, relative: str) -> pd.DataFrame:
    from merkit.datasets.registry import read_sheet

    path = shared_data / relative
    if not path.is_file():
        pytest.skip(f"{relative} not available")
    return read_sheet(dataset, path)


def _units(rows: pd.DataFrame, dataset: str) -> dict[str, ActionUnits]:
    """Every row of a sheet parsed, by ``subject/sample`` (a row that cannot be read fails the test with its
    one-line error)."""
    return {f"{r.subject}/{r.sample}": parse_action_units(r.action_units, Where(dataset, r.subject, r.sample))
            for r in rows.itertuples(index=False)}


# ------------------------------------------------------------------------------------------------ real sheets

def test_every_casme2_row_parses_and_sides_set_their_au(shared_data):
    rows = _sheet(shared_data, "casme2", CASME2_SHEET)
    units = _units(rows, "casme2")
    assert len(units) == 255
    text = dict(zip(rows["subject"] + "/" + rows["sample"], rows["action_units"]))
    assert text["sub01/EP02_01f"] == "12" and units["sub01/EP02_01f"].units == (12,)
    sides = rows[rows["action_units"].str.contains("L10")].iloc[0]
    assert sides["action_units"] == "4+7+L10" and units[f"{sides['subject']}/{sides['sample']}"].units == (4, 7, 10)
    assert text["sub06/EP02_31"] == "L2+26+38" and units["sub06/EP02_31"] == ActionUnits((2, 26, 38))  # L2+26+38: AU38 is parsed, the vector leaves it out
    assert not any(u.uncertain or u.descriptors for u in units.values())


def test_every_samm_row_parses_in_its_richer_notation(shared_data):
    rows = _sheet(shared_data, "samm", SAMM_SHEET)
    units = _units(rows, "samm")
    assert len(units) == 159
    text = dict(zip(rows["sample"], rows["action_units"]))
    units = {key.split("/")[1]: value for key, value in units.items()}  # SAMM's sample names hold the subject
    expected = {  # sample: (as written, AUs, uncertain, descriptors)
        "007_6_1": ("(R6 or R12)+R15", (6, 12, 15), True, ()),
        "010_2_1": ("ref(7B)+43", (7, 43), True, ()),
        "011_6_1": ("10A/B", (10,), False, ()),
        "014_6_3": ("A/L12", (12,), False, ()),
        "017_3_2": ("1A+2B+L14C", (1, 2, 14), False, ()),
        "020_1_3": ("B18+25", (18, 25), False, ()),
        "026_5_1": ("R14+17+soft focus", (14, 17), False, ("soft focus",)),
        "035_7_2": ("R14A or 17A or 24A", (14, 17, 24), True, ()),
    }
    for sample, (written, aus, uncertain, words) in expected.items():
        assert text[sample] == written
        assert units[sample] == ActionUnits(aus, uncertain, words)


def test_every_casme3_and_mmew_row_parses(shared_data):
    casme3 = _units(_sheet(shared_data, "casme3", "annotations/casme3/htnet-part-A-edited.csv"), "casme3")
    mmew_rows = _sheet(shared_data, "mmew", "annotations/mmew/htnet-delete-others.csv")
    mmew = _units(mmew_rows, "mmew")
    assert len(casme3) == 687 and len(mmew) == 234
    assert {u.units for u in casme3.values()} >= {(14, 28), (28,), (18,), (1, 2)}  # T28+14, B28, T18, L2+L1
    written = dict(zip(mmew_rows["action_units"], mmew_rows["subject"] + "/" + mmew_rows["sample"]))
    assert mmew[written["12L"]].units == (12,) and mmew[written["4R+7"]].units == (4, 7)  # MMEW writes sides last


def test_written_4dme_rows_parse_through_its_sheet_reader(tmp_path):
    from merkit.datasets.registry import read_sheet

    sheet = pd.DataFrame({"sub_ID": ["S01", "S01", "S02", "S02"], "fold_name": ["a", "b", "c", "d"],
                          "Emotion": ["Surprise", "Negative + Surprise", "Positive", "Others"],
                          "Onset": [1, 1, 1, 1], "Apex": [5, 5, 5, 5], "Offset": [9, 9, 9, 9],
                          "AUs": ["AU1+AU2", "AU4 + AU5 + L12", "R12B+AU25", ""]})
    sheet.to_excel(tmp_path / "4DME_Labelling_Micro_release v1.xlsx", index=False)
    rows = read_sheet("4dme", tmp_path / "4DME_Labelling_Micro_release v1.xlsx")
    assert [parse_action_units(t).units for t in rows["action_units"]] == [(1, 2), (4, 5, 12), (12, 25), ()]


# ------------------------------------------------------------------------------------------------ properties

PREFIXES = ["", "L", "R", "A", "T", "B", "U", "A/L"]
INTENSITIES = ["", "A", "B", "C", "D", "E", "A/B"]
SEPARATORS = ["+", " + ", ", ", "; ", "+ "]


@st.composite
def written_aus(draw) -> tuple[str, set[int]]:
    """A well-formed AU string as the sheets write it, and the AUs it names."""
    numbers = draw(st.lists(st.integers(1, 99), min_size=1, max_size=6))
    codes = []
    for n in numbers:
        au = draw(st.sampled_from(["", "AU", "AU "]))
        if draw(st.booleans()):
            codes.append(f"{au}{draw(st.sampled_from(PREFIXES))}{n}{draw(st.sampled_from(INTENSITIES))}")
        else:
            codes.append(f"{au}{n}{draw(st.sampled_from(['L', 'R']))}")  # MMEW: the side after the number
    text = codes[0]
    for code in codes[1:]:
        text += draw(st.sampled_from(SEPARATORS)) + code
    return draw(st.sampled_from(["{}", " {} ", "{}?"])).format(text), set(numbers)


@settings(max_examples=300)
@given(written_aus())
def test_a_well_formed_au_string_gives_its_aus_and_their_vector(case):
    from merkit.datasets.action_units import au_vector

    text, numbers = case
    units = parse_action_units(text.lower() if len(numbers) % 2 else text, Where("samm", "006", "006_1_2"))
    assert set(units.units) == numbers and not units.uncertain
    vector, outside = au_vector(units)
    assert [au for au, on in zip(PAPER_AUS, vector) if on] == sorted(numbers & set(PAPER_AUS))
    assert outside == sorted(numbers - set(PAPER_AUS))


@settings(max_examples=200)
@given(written_aus(), st.sampled_from(["%", "#", "*", "=", "!", "X", "Q", "++", "0", "100"]), st.data())
def test_a_malformed_au_string_is_a_one_line_error_naming_dataset_and_sample(case, junk, data):
    text, _ = case
    position = data.draw(st.sampled_from(["start", "end", "middle"]))
    bad = {"start": junk + text, "end": text.rstrip("?") + junk,
           "middle": text.replace("+", f"+{junk}+", 1) if "+" in text else junk + "+" + text}[position]
    if junk in ("0", "100"):
        bad = f"{text.rstrip('?')}+{junk}"
    with pytest.raises(DataError) as caught:
        parse_action_units(bad, Where("casme2", "sub07", "EP01_05"))
    message = str(caught.value)
    assert "\n" not in message and "casme2" in message and "EP01_05" in message and repr(bad) in message


# ------------------------------------------------------------------------------------------------ the vector

def _table(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    from merkit.datasets.table import new_sample_table

    return new_sample_table([{"dataset": d, "subject": s, "sample": n, "emotion": "happiness", "action_units": a}
                             for d, s, n, a in rows])


def test_the_vector_follows_the_paper_order_and_counts_what_it_cannot_hold():
    from merkit.inputs.action_units import action_unit_vectors

    assert PAPER_AUS == (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 18, 20, 23, 24, 25, 26, 28, 45)
    diagnostics = Diagnostics()
    with pytest.warns(UserWarning):
        vectors = action_unit_vectors(_table(("casme2", "sub01", "a", "1+R2+45"), ("casme2", "sub01", "b", "4+38"),
                                             ("samm", "006", "c", "31"), ("samm", "006", "d", "L12 or L14")),
                                      PAPER_AUS, diagnostics)
    assert vectors.dtype == torch.float32 and vectors.shape == (4, 21)
    assert vectors[0].nonzero().flatten().tolist() == [0, 1, 20]  # AU1, AU2, AU45 (last)
    assert vectors[1].nonzero().flatten().tolist() == [2]  # AU4; AU38 is outside the 21
    assert vectors[2].sum() == 0 and vectors[3].nonzero().flatten().tolist() == [8, 9]
    assert diagnostics.summary() == {"au-outside-vocabulary": 2, "au-none": 1, "au-uncertain": 1}
    outside = [r for r in diagnostics.records if r["kind"] == "au-outside-vocabulary"]
    assert [(r["sample"], "38" in r["message"]) for r in outside][0] == ("b", True)


def test_an_unreadable_au_cell_stops_the_vector_with_the_sample_named():
    from merkit.inputs.action_units import action_unit_vectors

    with pytest.raises(DataError, match=r"'4\+\+7'.*sample=EP09") as caught:
        action_unit_vectors(_table(("casme2", "sub02", "EP09", "4++7")), PAPER_AUS)
    assert "\n" not in str(caught.value) and "casme2" in str(caught.value)


# ------------------------------------------------------------------------------------------------ the join

@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from merkit.synthetic import generate

    root = tmp_path_factory.mktemp("synthetic")
    generate(root, subjects=3, clips_per_class=1, seed=7, duration=(8, 10))
    return root


def test_au_sheets_join_by_dataset_subject_and_sample(release):
    sheet = release / "CASME2-coding-synthetic.xlsx"  # the synthetic release's sheet is in CASME II's format
    truth = pd.read_csv(release / "samples.csv", dtype={"subject": str, "sample": str})
    table = _table(*[("casme2", r.subject, r.sample, "") for r in truth.itertuples()][::-1])
    joined = join_au_sheets(table, {"casme2": sheet})
    key = ["subject", "sample"]
    assert (dict(zip(zip(*(joined[k] for k in key)), joined["action_units"]))
            == dict(zip(zip(*(truth[k] for k in key)), truth["action_units"])))


def test_a_sample_the_au_sheets_lack_is_a_one_line_error_naming_it(release):
    sheet = release / "CASME2-coding-synthetic.xlsx"
    with pytest.raises(DataError, match="no row for this sample.*sub01.*EP99_99") as caught:
        join_au_sheets(_table(("casme2", "sub01", "EP99_99", "")), {"casme2": sheet})
    assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match="no AU sheet for dataset 'smic'.*s01_ne_01.*data.datasets"):
        join_au_sheets(_table(("smic", "s01", "s01_ne_01", "")), {"casme2": sheet})


def test_the_composite_casme2_and_samm_parts_all_find_their_aus(composite_dir, shared_data):
    from merkit.inputs.action_units import with_action_units
    from merkit.inputs.composite import read_composite

    for relative in (CASME2_SHEET, SAMM_SHEET):
        if not (shared_data / relative).is_file():
            pytest.skip(f"{relative} not available")
    features = read_composite(composite_dir)
    parts = features.subset(np.flatnonzero(features.table["dataset"].isin(["casme2", "samm"]).to_numpy()))
    sheets = {"casme2": str(shared_data / CASME2_SHEET), "samm": str(shared_data / SAMM_SHEET)}
    with pytest.warns(UserWarning):
        out = with_action_units(parts, Preprocessing(action_units=PAPER_AUS), sheets)
    assert len(out) == 278 and out.inputs["action_units"].shape == (278, 21)
    assert out.ground_truth_inputs == ["action_units"] and out.meta["preprocessing"]["action_units"] == list(PAPER_AUS)
    assert (out.inputs["action_units"].sum(1) > 0).sum() >= 270  # all but SAMM's AU31-only (and similar) samples
    row = out.table.index[out.table["sample_id"] == "casme2/sub01/EP02_01f"][0]
    assert out.inputs["action_units"][row].nonzero().flatten().tolist() == [PAPER_AUS.index(12)]
    with pytest.raises(DataError, match="smic"):
        with_action_units(features, Preprocessing(action_units=PAPER_AUS), sheets)


# ------------------------------------------------------------------------------------------------ config, record

AUS = "data.action_units=[" + ", ".join(map(str, PAPER_AUS)) + "]"


def test_au_keys_are_checked_where_the_config_enters():
    from merkit.config import load_config

    with pytest.raises(ConfigError, match="au_sheets.*action_units"):
        load_config(None, ["data.au_sheets={casme2: x.xlsx}"])
    with pytest.raises(ConfigError, match="needs data.au_sheets"):
        load_config(None, [AUS])
    with pytest.raises(ConfigError, match="'smic' is not a dataset whose sheet codes AUs"):
        load_config(None, [AUS, "data.au_sheets={smic: x.xlsx}"])
    with pytest.raises(ConfigError, match="raw release carries"):
        load_config(None, [AUS, "data.kind=raw", "data.dataset=casme2", "data.au_sheets={casme2: x.xlsx}"])
    with pytest.raises(ConfigError, match="AU 4 twice"):
        load_config(None, ["data.action_units=[4, 4]", "data.au_sheets={casme2: x.xlsx}"])
    with pytest.raises(ConfigError, match="action_units"):
        load_config(None, ["data.action_units=[0]", "data.au_sheets={casme2: x.xlsx}"])
    reads = load_config("megc2019/cva-fpf-flow", ["model.params.au_source=annotation"])
    with pytest.raises(ConfigError, match="reads the ground-truth AU input but data.action_units is empty"):
        reads.resolve()
    builds = load_config("megc2019/cva-fpf-flow", [AUS, "data.au_sheets={casme2: x.xlsx}"])
    with pytest.raises(ConfigError, match="does not read"):
        builds.resolve()


def test_configs_without_aus_keep_their_dict_and_hash():
    from merkit.config import load_config

    config = load_config("megc2019/cva-fpf-flow")
    assert "action_units" not in config.to_dict()["data"] and "au_sheets" not in config.to_dict()["data"]
    with_aus = load_config("megc2019/cva-fpf-flow", [AUS, "data.au_sheets={casme2: x.xlsx}",
                                                     "model.params.au_source=annotation"])
    assert with_aus.to_dict()["data"]["action_units"] == list(PAPER_AUS)
    assert with_aus.data.preprocessing.action_units == PAPER_AUS
    moved = load_config("megc2019/cva-fpf-flow", [AUS, "data.au_sheets={casme2: elsewhere/x.xlsx}",
                                                  "model.params.au_source=annotation"])
    assert moved.result_hash() == with_aus.result_hash() != config.result_hash()  # sheets' place: not the result


def test_the_record_keeps_the_au_order_and_reads_records_without_it():
    record = Preprocessing(action_units=PAPER_AUS)
    written = record.to_dict()
    assert written["action_units"] == list(PAPER_AUS)
    assert Preprocessing.from_dict(written) == record
    assert "action_units" not in Preprocessing().to_dict()
    assert Preprocessing.from_dict(Preprocessing().to_dict()) == Preprocessing()
    assert record.config_hash() == Preprocessing().config_hash()  # the clips' inputs do not depend on the AUs
    assert "21-AU vector (oracle input)" in record.describe()
    with pytest.raises(CheckpointError, match="distinct"):
        Preprocessing.from_dict({**written, "action_units": [4, 4]})
    with pytest.raises(CheckpointError, match="list of AU numbers"):
        Preprocessing.from_dict({**written, "action_units": "4+7"})


def test_the_predictor_refuses_a_model_that_takes_ground_truth_aus():
    from merkit.models import create_model
    from merkit.predict import Predictor

    model = create_model("cva_fpf", "cpu", num_classes=3, au_source="annotation")
    with pytest.raises(CheckpointError, match="oracle input.*a video does not carry"):
        Predictor(model, ("negative", "positive", "surprise"), Preprocessing(action_units=PAPER_AUS))


# ------------------------------------------------------------------------------------------------ end to end

def test_cva_fpf_au_runs_through_merkit_evaluate_on_a_synthetic_release_as_oracle_input(release, tmp_path):
    from typer.testing import CliRunner

    from merkit.cli import app

    result = CliRunner().invoke(app, [
        "evaluate", "--config", "synthetic/cva-fpf-au", "--data", str(release), "--out", str(tmp_path / "run"),
        "--seeds", "0", "--epochs", "1", "--quiet", "--set", f"data.cache={tmp_path / 'cache'}",
        "--set", "data.face={size: 64, color: grey, upsample: 0}",
        "--set", "data.motion={representations: [apex_minus_onset, onset_apex_frames], size: 28, jitter: 1}",
        "--set", "model.params.input_size=28", "--set", "model.params.fpf_input_size=28",
        "--set", "protocol.save_checkpoints=false"])
    assert result.exit_code == 0, result.output
    assert "ORACLE INPUT: ground-truth action_units" in result.output
    run = tmp_path / "run"
    assert "oracle input: this run feeds ground-truth annotations (action_units)" in (run / "report.md").read_text()
    assert json.loads((run / "metrics.json").read_text())["ground_truth_inputs"] == ["action_units"]
    assert json.loads((run / "preprocessing.json").read_text())["action_units"] == list(PAPER_AUS)
    assert len(pd.read_csv(run / "predictions.csv")) == 9


def test_the_synthetic_release_writes_aus_the_parser_reads_into_the_vector(release):
    from merkit.api import load_features
    from merkit.config import load_config

    config = load_config("synthetic/cva-fpf-au", [f"data.path={release}", "data.cache=",
                                                  "data.face={size: 64, color: grey, upsample: 0}",
                                                  "data.motion={representations: [apex_minus_onset], size: 28}"])
    features = load_features(config)
    truth = pd.read_csv(release / "samples.csv", dtype={"subject": str, "sample": str}).set_index("sample")
    truth = truth.reset_index().set_index(["subject", "sample"])
    for row, vector in zip(features.table.itertuples(), features.inputs["action_units"]):
        aus = {int(a) for a in truth.loc[(row.subject, row.sample), "action_units"].split("+")}
        assert {au for au, on in zip(PAPER_AUS, vector.tolist()) if on} == aus
    assert features.ground_truth_inputs == ["action_units"]


def test_a_trained_checkpoint_keeps_the_au_order_and_predict_refuses_it(release, tmp_path):
    from merkit.api import train
    from merkit.checkpoint import Checkpoint
    from merkit.config import load_config
    from merkit.predict import Predictor

    config = load_config("synthetic/cva-fpf-au", [
        f"data.path={release}", f"data.cache={tmp_path / 'cache'}", "data.face={size: 64, color: grey, upsample: 0}",
        "data.motion={representations: [apex_minus_onset, onset_apex_frames], size: 28}",
        "model.params.input_size=28", "model.params.fpf_input_size=28", "training.epochs=1"])
    folder = train(config, tmp_path / "checkpoint")
    assert json.loads((folder / "checkpoint.json").read_text())["preprocessing"]["action_units"] == list(PAPER_AUS)
    assert Checkpoint.load(folder)[0].preprocessing.action_units == PAPER_AUS
    with pytest.raises(CheckpointError, match="oracle input"):
        Predictor.from_checkpoint(folder)


def test_the_composite_au_config_loads_its_278_samples_with_their_aus(composite_dir, shared_data):
    from merkit.api import load_features
    from merkit.config import load_config

    sheets = {"casme2": shared_data / CASME2_SHEET, "samm": shared_data / SAMM_SHEET}
    if not all(p.is_file() for p in sheets.values()):
        pytest.skip("the CASME II and SAMM sheets are not available")
    config = load_config("megc2019/cva-fpf-flow-au", [
        f"data.path={composite_dir}",
        f"data.au_sheets={{casme2: {sheets['casme2']}, samm: {sheets['samm']}}}"])
    assert config.run_name.endswith("-subset-casme2+samm")
    with pytest.warns(UserWarning):
        features = load_features(config)
    assert len(features) == 278 and set(features.table["dataset"]) == {"casme2", "samm"}
    assert features.inputs["action_units"].shape == (278, 21) and features.ground_truth_inputs == ["action_units"]
    assert features.inputs["flow"].shape == (278, 3, 28, 28)

"""The real annotation sheets in ../shared/data/annotations parse to the counts the releases are known to have."""

from __future__ import annotations

import warnings

import pytest

from merkit.datasets import casme2, casme3, megc2019, mmew, samm, smic
from merkit.datasets.fixes import prepare
from merkit.datasets.registry import sheet_table
from merkit.datasets.schemes import get_scheme
from merkit.errors import DataError, Diagnostics


@pytest.fixture(scope="module")
def annotations(shared_data):
    return shared_data / "annotations"


def test_casme2_sheet_has_255_samples_26_subjects_and_the_published_emotion_counts(annotations):
    rows = casme2.read_sheet(annotations / "casme2" / "CASME2-coding-20190701.xlsx")
    assert len(rows) == 255
    assert rows["subject"].nunique() == 26
    assert rows["subject"].iloc[0] == "sub01"
    assert rows["emotion"].value_counts().to_dict() == {
        "others": 99, "disgust": 63, "happiness": 32, "surprise": 28, "repression": 27, "sadness": 4, "fear": 2}
    assert set(rows["emotion"]) <= casme2.EMOTIONS


def test_casme2_slash_apex_becomes_the_midpoint_and_is_counted(annotations):
    rows = casme2.read_sheet(annotations / "casme2" / "CASME2-coding-20190701.xlsx")
    diagnostics = Diagnostics()
    with pytest.warns(UserWarning, match="apex-midpoint"):
        prepared = prepare(rows, "casme2", casme2.FIXES, diagnostics=diagnostics)
    assert diagnostics.summary() == {"apex-midpoint": 1}
    row = prepared.set_index("sample").loc["EP12_01f"]
    assert (row["onset"], row["apex"], row["offset"]) == (261, 291, 321)


def test_casme2_cleaned_csv_reads_like_the_official_sheet(annotations):
    official = casme2.read_sheet(annotations / "casme2" / "CASME2-coding-20190701.xlsx")
    cleaned = casme2.read_sheet(annotations / "casme2" / "slstt-coding.csv")
    assert list(cleaned["sample"]) == list(official["sample"])
    assert list(cleaned["subject"]) == list(official["subject"])


def test_samm_sheet_has_159_micro_expressions_after_the_free_text_header(annotations):
    rows = samm.read_sheet(annotations / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx")
    assert len(rows) == 159
    assert rows["subject"].iloc[0] == "006" and rows["sample"].iloc[0] == "006_1_2"
    assert set(rows["emotion"]) == samm.EMOTIONS


def test_samm_out_of_range_apexes_are_fixed_by_key_and_counted(annotations):
    rows = samm.read_sheet(annotations / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx")
    with pytest.raises(DataError, match="032_3_1|028_4_1"):
        prepare(rows, "samm", ())
    diagnostics = Diagnostics()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fixed = prepare(rows, "samm", samm.FIXES, diagnostics=diagnostics)
    assert diagnostics.summary() == {"annotation-fix": 2}
    assert fixed.set_index("sample").loc["032_3_1", "apex"] == 4930
    assert len(fixed) == 159


def test_smic_hs_list_has_164_samples_from_16_subjects_in_both_spellings(annotations):
    slstt = smic.read_sheet(annotations / "smic" / "slstt-coding.csv")  # writes s1, s1_ne_01
    rcn = smic.read_sheet(annotations / "smic" / "rcn-3classes.csv")  # writes s01, s01_ne_01, no header
    assert len(slstt) == len(rcn) == 164
    assert slstt["subject"].nunique() == 16
    assert set(slstt["sample"]) == set(rcn["sample"])
    assert slstt["emotion"].value_counts().to_dict() == {"negative": 70, "positive": 51, "surprise": 43}


def test_megc2019_official_list_is_442_samples_with_250_109_83_per_class(annotations):
    listed = megc2019.read_sheet(annotations / "megc2019" / "combined_3class_gt.csv")
    assert len(listed) == 442
    assert listed["dataset"].value_counts().to_dict() == {"smic": 164, "casme2": 145, "samm": 133}
    assert listed["emotion"].value_counts().to_dict() == {"negative": 250, "positive": 109, "surprise": 83}
    assert listed.groupby(["dataset", "subject"]).ngroups == 68


def test_megc2019_list_names_match_the_release_spellings_of_the_three_sheets(annotations):
    listed = megc2019.read_sheet(annotations / "megc2019" / "combined_3class_gt.csv")
    keys = {
        "casme2": casme2.read_sheet(annotations / "casme2" / "CASME2-coding-20190701.xlsx"),
        "samm": samm.read_sheet(annotations / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx"),
        "smic": smic.read_sheet(annotations / "smic" / "slstt-coding.csv"),
    }
    scheme = get_scheme("megc2019-3class")
    for part, rows in keys.items():
        emotion = {(s, n): e for s, n, e in zip(rows["subject"], rows["sample"], rows["emotion"])}
        chosen = listed[listed["dataset"] == part]
        assert all((s, n) in emotion for s, n in zip(chosen["subject"], chosen["sample"])), part
        assert [scheme.label_of(emotion[(s, n)]) for s, n in zip(chosen["subject"], chosen["sample"])] == \
            list(chosen["label"]), part


def test_megc2019_rules_would_select_more_casme2_samples_than_the_official_list(annotations):
    rows = casme2.read_sheet(annotations / "casme2" / "CASME2-coding-20190701.xlsx")
    scheme = get_scheme("megc2019-3class")
    by_rule = sum(scheme.label_of(e) is not None for e in rows["emotion"])
    listed = megc2019.read_sheet(annotations / "megc2019" / "combined_3class_gt.csv")
    assert (listed["dataset"] == "casme2").sum() == 145
    assert by_rule == 156  # 11 more: 2 disgust, 3 surprise, 4 sadness, 2 fear the organisers left out


def test_derived_casme3_and_mmew_lists_parse_and_use_known_emotions(annotations):
    c3 = casme3.read_sheet(annotations / "casme3" / "htnet-part-A-edited.csv")
    assert len(c3) == 687
    assert not c3.duplicated(["subject", "sample"]).any()
    assert set(c3["emotion"]) <= casme3.EMOTIONS
    mm = mmew.read_sheet(annotations / "mmew" / "htnet-delete-others.csv")
    assert len(mm) == 234
    assert set(mm["emotion"]) <= mmew.EMOTIONS
    assert mm["subject"].iloc[0] == "S01"


def test_megc2019_selection_over_the_real_sheets_reproduces_the_official_labels(annotations):
    diagnostics = Diagnostics()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tables = {
            "casme2": sheet_table("casme2", annotations / "casme2" / "CASME2-coding-20190701.xlsx",
                                  diagnostics=diagnostics),
            "samm": sheet_table("samm", annotations / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx",
                                diagnostics=diagnostics),
            "smic": sheet_table("smic", annotations / "smic" / "slstt-coding.csv", diagnostics=diagnostics),
        }
    assert tables["casme2"].attrs["layout"] == "sheet-only"
    assert [len(t) for t in tables.values()] == [255, 159, 164]
    listed = megc2019.read_sheet(annotations / "megc2019" / "combined_3class_gt.csv")
    composite = megc2019.select(listed, tables)
    assert len(composite) == 442 and composite["subject_id"].nunique() == 68
    labelled = get_scheme("megc2019-3class").apply(composite)
    assert labelled["label"].tolist() == listed["label"].tolist()
    assert labelled["label"].value_counts().sort_index().tolist() == [250, 109, 83]


def test_casme3_videos_with_several_micro_expressions_get_distinct_sample_ids(annotations):
    rows = casme3.read_sheet(annotations / "casme3" / "htnet-part-A-edited.csv")
    assert rows.duplicated(["subject", "clip"]).any()
    assert not rows.duplicated(["subject", "sample"]).any()
    assert rows.set_index(["subject", "sample"]).loc[("spNO.1", "b_166"), "apex"] == "175"

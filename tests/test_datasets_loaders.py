"""Each loader on a tiny tree in its official layout (4x4 images, the real naming schemes, sheets in the official
column layouts)."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pandas as pd
import pytest

from merkit.datasets import casme2, casme3, fourdme, megc2019, mmew, samm, smic
from merkit.datasets.fixes import Fix
from merkit.datasets.frames import frame_number
from merkit.datasets.registry import DATASETS, load_dataset
from merkit.datasets.schemes import get_scheme
from merkit.errors import DataError, Diagnostics


def touch_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((4, 4), 100, np.uint8))


def write_xlsx(path: Path, rows: list[tuple], preamble: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    sheet = book.active
    for i in range(preamble):
        sheet.append([f"free text line {i}"] if i % 2 == 0 else [])
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


CASME2_HEADER = ("Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
                 "Estimated Emotion")
CASME2_ROWS = [("01", "EP02_01f", None, 8, 10, 12, None, 12, "happiness"),
               ("01", "EP19_05f", None, 3, "/", 7, None, "4+7", "disgust"),
               (2, "EP01_11f", None, 96, 98, 101, None, 15, "repression")]


def build_casme2(root: Path, cropped: bool = False, rows: list[tuple] = CASME2_ROWS, skip: tuple = ()) -> Path:
    """A CASME II release: Cropped/subXX/EP/reg_imgN.jpg or CASME2_RAW_selected/subXX/EP/imgN.jpg + the sheet."""
    base = root / ("Cropped" if cropped else "CASME2_RAW_selected")
    for subject, sample, _, onset, _, offset, *_ in rows:
        if sample in skip:
            continue
        for n in range(onset - 1, offset + 2):
            touch_image(base / f"sub{int(subject):02d}" / sample / f"{'reg_' if cropped else ''}img{n}.jpg")
    write_xlsx(root / "CASME2-coding-20190701.xlsx", [CASME2_HEADER, *rows])
    return root


SAMM_HEADER = ("Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
               "Type", "Action Units", "Estimated Emotion", "Objective Classes", "Notes")
SAMM_ROWS = [(6, "006_1_2", 1, 5562, 5564, 5566, 5, "Micro - 1/2", "4+7", "Anger", 3, None),
             (11, "011_4_1", 4, 9998, 9999, 10001, 4, "Micro - 1/2", "A7", "Anger", 7, None),
             (32, "032_3_1", 3, 4896, 1930, 4900, 5, "Micro - 1/2", "4A", "Anger", 3, None)]


def build_samm(root: Path, rows: list[tuple] = SAMM_ROWS) -> Path:
    """SAMM: 006/006_1_2/006_05562.jpg (5-digit padding) and 011 running from 4 past 9999 to 5 digits."""
    for subject, sample, _, onset, _, offset, *_ in rows:
        for n in range(onset, offset + 1):
            name = f"{subject:03d}_{n:04d}.jpg" if subject == 11 else f"{subject:03d}_{n:05d}.jpg"
            touch_image(root / "SAMM" / f"{subject:03d}" / sample / name)
    write_xlsx(root / "SAMM_Micro_FACS_Codes_v2.xlsx", [SAMM_HEADER, *rows], preamble=13)
    return root


SMIC_SAMPLES = [("s1", "negative", "s1_ne_01", 559740, 559745), ("s1", "positive", "s1_po_01", 100, 104),
                ("s3", "surprise", "s3_sur_02", 98, 103)]


def build_smic(root: Path, cropped: bool = False) -> Path:
    """SMIC-HS: HS/s1/micro/negative/s1_ne_01/image559740.bmp (or SMIC_all_cropped/HS/... with reg_)."""
    base = root / "SMIC_all_cropped" / "HS" if cropped else root / "HS"
    for subject, emotion, sample, first, last in SMIC_SAMPLES:
        for n in range(first, last + 1):
            touch_image(base / subject / "micro" / emotion / sample / f"{'reg_' if cropped else ''}image{n}.bmp")
    return root


def test_casme2_raw_release_loads_sorted_frames_and_reports_raw(tmp_path):
    build_casme2(tmp_path)
    diagnostics = Diagnostics()
    with pytest.warns(UserWarning, match="apex-midpoint"):
        table = casme2.load(tmp_path, diagnostics=diagnostics)
    assert table.attrs["layout"] == "raw"
    assert list(table["sample_id"]) == ["casme2/sub01/EP02_01f", "casme2/sub01/EP19_05f", "casme2/sub02/EP01_11f"]
    first = table.iloc[0]
    assert [Path(f).name for f in first["frames"]] == [f"img{n}.jpg" for n in range(7, 14)]
    assert table.iloc[1]["apex"] == 5  # "/" -> midpoint of 3 and 7
    assert diagnostics.summary() == {"apex-midpoint": 1}


def test_casme2_cropped_release_is_found_and_reported_as_cropped(tmp_path):
    build_casme2(tmp_path, cropped=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = load_dataset("casme2", tmp_path / "Cropped", tmp_path / "CASME2-coding-20190701.xlsx")
    assert table.attrs["layout"] == "cropped"
    assert Path(table.iloc[0]["frames"][0]).name == "reg_img7.jpg"


def test_casme2_missing_apex_policy_drop_and_keep(tmp_path):
    build_casme2(tmp_path)
    diagnostics = Diagnostics()
    with pytest.warns(UserWarning, match="dropped-missing-apex"):
        dropped = casme2.load(tmp_path, diagnostics=diagnostics, missing_apex="drop")
    assert "EP19_05f" not in set(dropped["sample"]) and diagnostics.summary() == {"dropped-missing-apex": 1}
    kept = casme2.load(tmp_path, missing_apex="keep")
    assert pd.isna(kept.set_index("sample").loc["EP19_05f", "apex"])


def test_casme2_missing_sample_folder_raises_naming_the_sample(tmp_path):
    build_casme2(tmp_path, skip=("EP01_11f",))
    with pytest.raises(DataError, match=r"subject=sub02, sample=EP01_11f"):
        casme2.load(tmp_path, missing_apex="keep")
    with pytest.warns(UserWarning, match="dropped-missing-frames"):
        table = casme2.load(tmp_path, missing_apex="keep", missing="drop")
    assert len(table) == 2


def test_a_fix_applies_by_subject_and_sample_and_a_stale_fix_is_an_error(tmp_path):
    build_casme2(tmp_path)
    fix = Fix("sub01", "EP19_05f", "apex given as '/'; test value", expect={"apex": None}, set={"apex": 6})
    diagnostics = Diagnostics()
    with pytest.warns(UserWarning, match="annotation-fix"):
        table = casme2.load(tmp_path, diagnostics=diagnostics, fixes=(fix,))
    assert table.set_index("sample").loc["EP19_05f", "apex"] == 6
    assert diagnostics.summary() == {"annotation-fix": 1}
    stale = Fix("sub09", "EP19_05f", "no such subject", set={"apex": 6})
    with pytest.raises(DataError, match="matches 0 rows"):
        casme2.load(tmp_path, fixes=(stale,))
    other_version = Fix("sub01", "EP02_01f", "expects another sheet", expect={"apex": 11}, set={"apex": 9})
    with pytest.raises(DataError, match="expects apex=11"):
        casme2.load(tmp_path, fixes=(other_version,))


def test_casme2_out_of_order_annotation_raises_or_is_dropped_and_counted(tmp_path):
    rows = CASME2_ROWS + [("02", "EP03_02f", None, 20, 30, 25, None, 15, "others")]
    build_casme2(tmp_path, rows=[r for r in rows if r[1] != "EP03_02f"])
    write_xlsx(tmp_path / "CASME2-coding-20190701.xlsx", [CASME2_HEADER, *rows])
    with pytest.raises(DataError, match=r"apex 30 lies outside.*EP03_02f"):
        casme2.load(tmp_path, missing_apex="keep")
    diagnostics = Diagnostics()
    with pytest.warns(UserWarning, match="dropped-invalid-annotation"):
        table = casme2.load(tmp_path, diagnostics=diagnostics, missing_apex="keep", invalid="drop")
    assert len(table) == 3 and diagnostics.summary() == {"dropped-invalid-annotation": 1}


def test_samm_header_after_free_text_padding_and_fixes(tmp_path):
    build_samm(tmp_path)
    diagnostics = Diagnostics()
    with pytest.raises(DataError, match="annotation fix"):  # the built-in fixes name rows of the real sheet
        samm.load(tmp_path)
    fix = Fix("032", "032_3_1", "typo in test sheet", expect={"apex": 1930}, set={"apex": 4898})
    with pytest.warns(UserWarning, match="annotation-fix"):
        table = samm.load(tmp_path, diagnostics=diagnostics, fixes=(fix,))
    assert table.attrs["layout"] == "raw"
    by_sample = table.set_index("sample")
    assert [Path(f).name for f in by_sample.loc["006_1_2", "frames"]][:2] == ["006_05562.jpg", "006_05563.jpg"]
    assert [frame_number(f) for f in by_sample.loc["011_4_1", "frames"]] == [9998, 9999, 10000, 10001]
    assert by_sample.loc["011_4_1", "subject"] == "011"
    assert set(table["emotion"]) == {"anger"}


def test_smic_tree_without_sheet_gives_folder_labels_clip_range_and_midpoint_apex(tmp_path):
    build_smic(tmp_path)
    table = smic.load(tmp_path)
    assert table.attrs["layout"] == "raw" and table.attrs["apex"] == "midpoint"
    row = table.set_index("sample").loc["s1_ne_01"]
    assert (row["subject"], row["emotion"], row["onset"], row["apex"], row["offset"]) == \
        ("s1", "negative", 559740, 559742, 559745)
    assert Path(row["frames"][0]).name == "image559740.bmp"
    assert table.set_index("sample").loc["s3_sur_02", "frames"][-1].endswith("image103.bmp")
    assert get_scheme("smic-3class").apply(table)["label"].tolist() == [0, 1, 2]


def test_smic_accepts_s01_spelling_in_a_sheet_and_a_spotted_apex(tmp_path):
    build_smic(tmp_path)
    sheet = tmp_path / "list.csv"
    sheet.write_text("s01,s01_ne_01,559740,559744,559745,2\ns03,s03_sur_02,98,99,103,1\n")
    from_sheet = smic.load(tmp_path, sheet, apex="sheet")
    assert list(from_sheet["sample_id"]) == ["smic/s1/s1_ne_01", "smic/s3/s3_sur_02"]
    assert list(from_sheet["apex"]) == [559744, 99]
    spotted = smic.load(tmp_path, apex=lambda frames: frame_number(frames[1]))
    assert spotted.set_index("sample").loc["s1_po_01", "apex"] == 101


def test_smic_cropped_release_is_reported(tmp_path):
    build_smic(tmp_path, cropped=True)
    table = smic.load(tmp_path)
    assert table.attrs["layout"] == "cropped" and len(table) == 3


def test_casme3_several_micro_expressions_in_one_video_get_distinct_ids_and_windows(tmp_path):
    for n in range(1, 21):
        touch_image(tmp_path / "part_A" / "spNO.1" / "b" / "color" / f"{n}.jpg")
    header = ("Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion")
    write_xlsx(tmp_path / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx",
               [header, ("spNO.1", "b", 3, 5, 7, "4", "III", "disgust"),
                ("spNO.1", "b", 12, 13, 16, "12", "I", "Others")])
    table = casme3.load(tmp_path)
    assert list(table["sample"]) == ["b_3", "b_12"]
    assert list(table["clip"]) == ["b", "b"]
    assert [frame_number(f) for f in table.iloc[1]["frames"]] == [12, 13, 14, 15, 16]
    assert list(table["emotion"]) == ["disgust", "others"]
    assert get_scheme("casme3-4class").apply(table)["label"].tolist() == [1, 3]


def test_mmew_finds_samples_under_their_emotion_folder(tmp_path):
    for n in range(1, 10):
        touch_image(tmp_path / "Micro_Expression" / "happiness" / "S01-01-001" / f"{n}.jpg")
        touch_image(tmp_path / "Micro_Expression" / "Surprise" / "S02-03-002" / f"{n}.jpg")
    header = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
              "Estimated Emotion", "remarks")
    write_xlsx(tmp_path / "MMEW_Micro_Exp.xlsx", [header, (1, "S01-01-001", 1, 5, 9, "6+12", "happiness", None),
                                                  (2, "S02-03-002", 1, 4, 9, "1+2", "surprise", None)])
    table = mmew.load(tmp_path)
    assert list(table["subject"]) == ["S01", "S02"]
    assert [Path(f).name for f in table.iloc[0]["frames"]][-2:] == ["8.jpg", "9.jpg"]
    assert table.attrs["layout"] == "raw"


def test_4dme_assumed_layout_and_folder_template(tmp_path):
    for n in (1, 2, 10):
        touch_image(tmp_path / "S01" / "S01_fold3" / "gray" / f"frame_{n}.png")
    header = ("sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs")
    write_xlsx(tmp_path / "4DME_Labelling_Micro_release v1.xlsx",
               [header, ("S01", "S01_fold3", "Negative + Surprise", 1, 2, 10, "4+1")])
    with pytest.raises(DataError, match="no image frames"):
        fourdme.load(tmp_path)
    table = fourdme.load(tmp_path, folder_template="{subject}/{sample}/gray")
    assert table.iloc[0]["emotion"] == "negative+surprise"
    assert [frame_number(f) for f in table.iloc[0]["frames"]] == [1, 2, 10]


def build_composite(root: Path) -> Path:
    build_casme2(root / "casme2")
    build_samm(root / "SAMM")
    build_smic(root / "smic")
    (root / "combined_3class_gt.csv").write_text(
        "casme2,sub01,EP02_01f,1\ncasme2,sub02,EP01_11f,0\nsamm,6,006_1_2,0\n"
        "smic,s01,s01_ne_01,0\nsmic,s03,s03_sur_02,2\n")
    return root


def test_megc2019_composite_selects_the_official_list_across_the_three_releases(tmp_path):
    build_composite(tmp_path)
    samm_fix = (Fix("032", "032_3_1", "typo in test sheet", expect={"apex": 1930}, set={"apex": 4898}),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = megc2019.load(tmp_path, parts=("casme2", "smic"))
        with_samm = megc2019.load(tmp_path, roots={"samm": tmp_path / "SAMM" / "SAMM"}, parts=("samm",),
                                  fixes=samm_fix)
    assert list(table["sample_id"]) == ["casme2/sub01/EP02_01f", "casme2/sub02/EP01_11f",
                                        "smic/s1/s1_ne_01", "smic/s3/s3_sur_02"]
    assert get_scheme("megc2019-3class").apply(table)["label"].tolist() == [1, 0, 0, 2]
    assert list(with_samm["sample_id"]) == ["samm/006/006_1_2"]
    assert table.attrs["layouts"] == {"casme2": "raw", "smic": "raw"}


def test_megc2019_listed_sample_absent_from_the_release_is_an_error(tmp_path):
    build_composite(tmp_path)
    (tmp_path / "combined_3class_gt.csv").write_text("casme2,sub01,EP09_09,0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(DataError, match="EP09_09"):
            megc2019.load(tmp_path, parts=("casme2",))


def test_megc2019_label_that_disagrees_with_the_emotion_is_an_error(tmp_path):
    build_composite(tmp_path)
    (tmp_path / "combined_3class_gt.csv").write_text("casme2,sub01,EP02_01f,2\n")  # happiness is not surprise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(DataError, match="disagrees with the official label 2"):
            megc2019.load(tmp_path, parts=("casme2",))


def test_registry_names_every_dataset_and_each_module_has_the_common_api():
    assert set(DATASETS) == {"casme2", "samm", "smic", "casme3", "mmew", "4dme", "megc2019", "synthetic"}
    for entry in DATASETS.values():
        module = entry.loader
        assert callable(entry.load) and callable(module.read_sheet) and module.EMOTIONS
        for scheme in entry.schemes:
            get_scheme(scheme)


def test_every_emotion_of_a_dataset_vocabulary_is_mapped_or_deliberately_dropped_by_its_schemes():
    for entry in DATASETS.values():
        for name in entry.schemes:
            scheme = get_scheme(name)
            for emotion in entry.emotions:
                scheme.label_of(emotion)  # raises DataError for an emotion the scheme does not cover


def test_samm_cropped_release_is_recognised_by_its_folder_and_needs_a_choice_beside_the_raw_one(tmp_path):
    build_samm(tmp_path)
    for n in range(5562, 5567):
        touch_image(tmp_path / "SAMM_CROP" / "006" / "006_1_2" / f"006_{n:05d}.jpg")
    rows = [SAMM_HEADER, SAMM_ROWS[0]]
    write_xlsx(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", rows, preamble=13)
    with pytest.raises(DataError, match="both a raw and a cropped"):
        samm.load(tmp_path, fixes=())
    cropped = samm.load(tmp_path, fixes=(), layout="cropped")
    raw = samm.load(tmp_path, fixes=(), layout="raw")
    assert (cropped.attrs["layout"], raw.attrs["layout"]) == ("cropped", "raw")
    assert "SAMM_CROP" in cropped.iloc[0]["frames"][0] and "SAMM_CROP" not in raw.iloc[0]["frames"][0]

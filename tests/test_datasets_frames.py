"""Frame discovery: numbering, integer sorting, raw versus cropped releases, missing frames, sheet lookup."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from merkit.datasets.frames import (attach_frames, describe_numbers, find_release, find_sheet, frame_number,
                                    frames_between, list_frames, missing_frames)
from merkit.errors import DataError, Diagnostics, Where


def touch_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((4, 4), 128, np.uint8))
    return path


@pytest.mark.parametrize("name, number", [
    ("img46.jpg", 46), ("reg_img46.jpg", 46), ("006_05562.jpg", 5562), ("011_10001.jpg", 10001),
    ("image559740.bmp", 559740), ("175.jpg", 175)])
def test_frame_number_is_the_last_integer_of_every_official_naming(name, number):
    assert frame_number(name) == number


def test_frame_number_without_digits_is_a_data_error():
    with pytest.raises(DataError, match="no frame number"):
        frame_number("cover.jpg")


def test_frames_sort_by_integer_across_a_padding_change(tmp_path):
    # SAMM pads to 4 digits and then runs past 9999; name order would put 10000 first.
    for n in (9998, 9999, 10000, 10001):
        touch_image(tmp_path / "011_4_1" / f"011_{n}.jpg")
    (tmp_path / "011_4_1" / "Thumbs.db").write_bytes(b"")  # not an image: ignored
    frames = list_frames(tmp_path / "011_4_1")
    assert [frame_number(f) for f in frames] == [9998, 9999, 10000, 10001]


def test_frames_sort_by_integer_not_by_name(tmp_path):
    for n in (8, 9, 10, 11):
        touch_image(tmp_path / "EP" / f"img{n}.jpg")
    assert [p.name for p in list_frames(tmp_path / "EP")] == ["img8.jpg", "img9.jpg", "img10.jpg", "img11.jpg"]


def test_two_files_with_one_frame_number_are_an_error(tmp_path):
    touch_image(tmp_path / "s" / "006_5562.jpg")
    touch_image(tmp_path / "s" / "006_05562.jpg")
    with pytest.raises(DataError, match="occur twice"):
        list_frames(tmp_path / "s")


def test_missing_or_empty_frame_folder_names_the_sample(tmp_path):
    where = Where("casme2", "sub01", "EP02_01f")
    with pytest.raises(DataError, match=r"frame folder not found.*sample=EP02_01f"):
        list_frames(tmp_path / "nope", where)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image frames"):
        list_frames(tmp_path / "empty", where)


def test_frames_between_and_missing_frames_use_frame_numbers(tmp_path):
    frames = [touch_image(tmp_path / "v" / f"{n}.jpg") for n in (1, 2, 3, 10, 11)]
    frames = list_frames(tmp_path / "v")
    assert [frame_number(p) for p in frames_between(frames, 2, 10)] == [2, 3, 10]
    assert missing_frames(frames) == [4, 5, 6, 7, 8, 9] and missing_frames(frames, 10, 11) == []
    assert describe_numbers(missing_frames(frames, 1, 13)) == "4-9, 12-13"


def test_release_kind_is_raw_for_plain_frames_and_cropped_for_reg_prefix(tmp_path):
    touch_image(tmp_path / "raw" / "sub01" / "EP02_01f" / "img46.jpg")
    touch_image(tmp_path / "crop" / "sub01" / "EP02_01f" / "reg_img46.jpg")
    raw = find_release(tmp_path / "raw", "casme2", r"sub\d+")
    cropped = find_release(tmp_path / "crop", "casme2", r"sub\d+")
    assert (raw.kind, raw.base) == ("raw", tmp_path / "raw")
    assert (cropped.kind, cropped.base) == ("cropped", tmp_path / "crop")
    assert "cropped release at" in str(cropped)


def test_release_in_a_container_folder_is_found_from_its_parent(tmp_path):
    touch_image(tmp_path / "Cropped" / "sub01" / "EP02_01f" / "reg_img46.jpg")
    release = find_release(tmp_path, "casme2", r"sub\d+", ("Cropped", "CASME2_RAW_selected"))
    assert release.kind == "cropped" and release.base == tmp_path / "Cropped"


def test_both_releases_present_need_an_explicit_layout(tmp_path):
    touch_image(tmp_path / "Cropped" / "sub01" / "EP02_01f" / "reg_img46.jpg")
    touch_image(tmp_path / "CASME2_RAW_selected" / "sub01" / "EP02_01f" / "img46.jpg")
    containers = ("Cropped", "CASME2_RAW_selected")
    with pytest.raises(DataError, match="both a raw and a cropped"):
        find_release(tmp_path, "casme2", r"sub\d+", containers)
    assert find_release(tmp_path, "casme2", r"sub\d+", containers, "raw").base.name == "CASME2_RAW_selected"
    assert find_release(tmp_path, "casme2", r"sub\d+", containers, "cropped").base.name == "Cropped"


def test_no_release_is_an_error_that_says_what_was_looked_for(tmp_path):
    (tmp_path / "Cropped" / "1").mkdir(parents=True)  # MMNet-style numbering is not a CASME II subject
    with pytest.raises(DataError, match=r"no casme2 release.*sub"):
        find_release(tmp_path, "casme2", r"sub\d+", ("Cropped",))
    with pytest.raises(DataError, match="root not found"):
        find_release(tmp_path / "absent", "casme2", r"sub\d+")


def test_find_sheet_takes_the_one_match_and_refuses_two(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "CASME2-coding-20190701.xlsx").write_bytes(b"")
    (tmp_path / "a" / "~$CASME2-coding-20190701.xlsx").write_bytes(b"")  # Excel lock file
    assert find_sheet(tmp_path, ("CASME2-coding-*.xlsx",), "casme2").parent.name == "a"
    (tmp_path / "CASME2-coding-20140508.xlsx").write_bytes(b"")
    with pytest.raises(DataError, match="2 casme2 annotation sheets"):
        find_sheet(tmp_path, ("CASME2-coding-*.xlsx",), "casme2")


@pytest.mark.parametrize("policy, kept, kinds", [("drop", 1, {"dropped-missing-frames": 1}),
                                                 ("keep", 2, {"missing-frames": 1})])
def test_missing_frames_can_be_dropped_or_kept_and_are_counted(tmp_path, policy, kept, kinds):
    touch_image(tmp_path / "sub01" / "A" / "img1.jpg")
    rows = pd.DataFrame({"subject": ["sub01", "sub01"], "sample": ["A", "B"], "onset": [1, 1], "offset": [1, 1]})
    diagnostics = Diagnostics()
    with pytest.warns(UserWarning, match="sample=B"):
        out = attach_frames(rows, "casme2", lambda r: tmp_path / r["subject"] / r["sample"], missing=policy,
                            diagnostics=diagnostics)
    assert len(out) == kept
    assert diagnostics.summary() == kinds
    with pytest.raises(DataError, match="sample=B"):
        attach_frames(rows, "casme2", lambda r: tmp_path / r["subject"] / r["sample"])

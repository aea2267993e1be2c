"""HTNet (merkit.models.htnet): shapes, parameter count, the facial areas, and the face points it reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from merkit.errors import ConfigError
from merkit.models import build_model, count_parameters
from merkit.models.htnet import FIXED_POINTS, PRESETS, area_centres, area_mosaic
from tests.helpers import adamw_losses

pytestmark = pytest.mark.usefixtures("one_thread")

# Pinned parameter counts (3 classes). The authors' Model.py, built with main_HTNet.py's arguments (image 28,
# patch 7, dim 256, heads 3, 3 hierarchies, blocks 2, 2, 10), has 139,582,982 parameters, the same count.
HTNET_PARAMS = {"paper": 139_582_982, "cpu": 607_942}


def inputs(batch: int = 2, side: int = 28, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    points = torch.tensor(FIXED_POINTS).expand(batch, -1, -1) + (torch.rand(batch, 5, 2, generator=g) - 0.5) * 0.1
    return {"flow": torch.rand(batch, 3, side, side, generator=g), "face_points": points}


def formula_count(dim: int, heads: int, depths: tuple[int, ...], mlp: int, classes: int, patch: int = 7,
                  tokens: int = 1) -> int:
    """Parameters from the architecture's description: patch embedding, per level the position scalars and the
    blocks (2 LayerNorms, q/k/v without bias, output projection, MLP), an aggregation between levels (3 x 3
    convolution to twice the width, LayerNorm), the head (LayerNorm, linear). A head has ``width // heads`` dims."""
    total = 3 * patch * patch * dim + dim
    for level, depth in enumerate(depths):
        d, h = dim * 2 ** level, heads * 2 ** level
        inner = h * (d // h)
        block = 2 * d + 3 * d * inner + inner * d + d + 2 * d + d * mlp * d + mlp * d + mlp * d * d + d
        total += tokens + depth * block
        if level < len(depths) - 1:
            total += 9 * d * 2 * d + 2 * d + 2 * (2 * d)
    last = dim * 2 ** (len(depths) - 1)
    return total + 2 * last + last * classes + classes


def test_paper_preset_shapes_at_28_px():
    model = build_model("htnet", 3, "paper").eval()
    x = inputs(2)
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x).logits
    assert features.shape == (2, 1024, 1, 1)
    assert logits.shape == (2, 3)
    assert model.input_keys == ("flow", "face_points")
    assert model.areas(x).shape == (2, 3, 28, 28)


def test_paper_preset_is_the_described_hierarchy():
    c = PRESETS["paper"]
    assert (c.input_size, c.patch_size, c.dim, c.heads, c.levels, c.depths, c.mlp_ratio) == (
        28, 7, 256, 3, 3, (2, 2, 10), 4)
    assert c.widths == (256, 512, 1024) and c.level_heads == (3, 6, 12)
    # A 4 x 4 token map, cut into 16, 4 and 1 blocks: one token per block at every level.
    assert c.tokens_per_block == 1
    model = build_model("htnet", 3, "paper")
    assert [level.blocks for level in model.levels] == [4, 2, 1]
    assert [len(level.layers) for level in model.levels] == [2, 2, 10]
    assert [level.layers[0].attn.head_dim for level in model.levels] == [85, 85, 85]


@pytest.mark.parametrize("preset", sorted(HTNET_PARAMS))
def test_parameter_count_matches_the_architecture(preset):
    c = PRESETS[preset]
    count = count_parameters(build_model("htnet", 3, preset))
    assert count == formula_count(c.dim, c.heads, c.depths, c.mlp_ratio, 3) == HTNET_PARAMS[preset]


def test_two_levels_give_blocks_of_four_tokens():
    model = build_model("htnet", 3, "cpu", levels=2, depths=(1, 1))
    assert model.config.tokens_per_block == 4 and [level.blocks for level in model.levels] == [2, 1]
    assert model.forward_features(inputs(2)).shape == (2, 64, 2, 2)  # the four areas' tokens
    assert count_parameters(model) == formula_count(32, 3, (1, 1), 4, 3, tokens=4)


def test_head_of_features_equals_forward():
    torch.manual_seed(0)
    model = build_model("htnet", 3, "cpu").eval()
    x = inputs(3)
    with torch.no_grad():
        assert torch.equal(model.forward_head(model.forward_features(x)), model(x).logits)


def flow_of_coordinates(side: int = 28) -> torch.Tensor:
    """(1, 3, S, S): channel 0 holds the row, channel 1 the column, channel 2 zero."""
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    return torch.stack([rows, cols, torch.zeros_like(rows)]).float()[None]


def test_areas_are_14_px_windows_at_the_rounded_clipped_points_eyes_on_top():
    # Points (x, y) in units of the side: image-left eye, image-right eye, nose, left and right mouth corner.
    px = torch.tensor([[[10.4, 9.6], [19.5 + 1e-3, 9.2], [14.0, 15.0], [3.0, 22.6], [18.2, 27.0]]])
    centres = area_centres(px / 28, 28)
    # (row, column) = (y, x), rounded, clipped to [7, 21]; the nose is not an area.
    assert centres.tolist() == [[[10, 10], [9, 20], [21, 7], [21, 18]]]
    mosaic = area_mosaic(flow_of_coordinates(), centres)
    assert mosaic.shape == (1, 3, 28, 28)
    for k, (top, left) in enumerate([(0, 0), (0, 14), (14, 0), (14, 14)]):
        r, c = centres[0, k].tolist()
        window = mosaic[0, :2, top:top + 14, left:left + 14]
        assert window[0, :, 0].tolist() == list(range(r - 7, r + 7))  # rows r-7 .. r+6
        assert window[1, 0, :].tolist() == list(range(c - 7, c + 7))


def test_the_authors_axes_take_rows_from_x():
    px = torch.tensor([[[9.0, 11.0], [21.0, 10.0], [15.0, 17.0], [10.0, 22.0], [20.0, 22.0]]])
    # main_HTNet.py: flow[x - 7:x + 7, y - 7:y + 7] after clipping to [7, 21]
    assert area_centres(px / 28, 28, authors_axes=True).tolist() == [[[9, 11], [21, 10], [10, 21], [20, 21]]]
    assert area_centres(px / 28, 28).tolist() == [[[11, 9], [10, 21], [21, 10], [21, 20]]]


def test_fixed_regions_use_the_authors_fallback_points_and_need_no_landmarks():
    model = build_model("htnet", 3, "cpu", regions="fixed")
    assert model.input_keys == ("flow",) and model.notes
    flow = flow_of_coordinates().expand(2, -1, -1, -1)
    expected = area_mosaic(flow, area_centres(torch.tensor(FIXED_POINTS).expand(2, -1, -1), 28))
    assert torch.equal(model.areas({"flow": flow}), expected)
    # eyes (y 11.1 and 10.9 px) at rows 11; mouth corners (y 22.1, 22.3) clipped to row 21
    assert area_centres(torch.tensor(FIXED_POINTS)[None], 28)[0, :, 0].tolist() == [11, 11, 21, 21]
    assert model({"flow": torch.rand(2, 3, 28, 28)}).logits.shape == (2, 3)
    whole = build_model("htnet", 3, "cpu", regions="none")
    x = torch.rand(1, 3, 28, 28)
    assert torch.equal(whole.areas({"flow": x}), x)


def test_a_mirrored_sample_gives_the_mirrored_mosaic_under_hflip():
    from merkit.training.augment import hflip

    x = inputs(8, seed=3)
    out = hflip(dict(x), {"flow_channels": ["u", "v", "strain"]}, torch.Generator().manual_seed(0))
    flipped = ~torch.isclose(out["face_points"], x["face_points"]).all(-1).all(-1)
    assert flipped.any() and (~flipped).any()
    model = build_model("htnet", 3, "cpu", input_scale=1.0)
    before, after = model.areas(x), model.areas(out)
    mirror = before[flipped].flip(-1)
    mirror[:, 0] = 1.0 - mirror[:, 0]  # hflip negates u
    torch.testing.assert_close(after[flipped], mirror)
    torch.testing.assert_close(after[~flipped], before[~flipped])


def test_missing_face_points_are_named():
    with pytest.raises(KeyError, match="face_points"):
        build_model("htnet", 3, "cpu")({"flow": torch.rand(1, 3, 28, 28)})


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="blocks of 4 levels"):
        build_model("htnet", 3, "cpu", levels=4, depths=(1, 1, 1, 1))
    with pytest.raises(ValueError, match="depths"):
        build_model("htnet", 3, "cpu", depths=(1, 1))
    with pytest.raises(ValueError, match="regions"):
        build_model("htnet", 3, "cpu", regions="grid")
    with pytest.raises(ConfigError, match="patch"):
        build_model("htnet", 3, "cpu", patch=7)


def test_a_few_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    model = build_model("htnet", 2, "cpu")
    labels = torch.tensor([0, 1] * 4)
    x = inputs(8, seed=1)
    x["flow"] = x["flow"] * 0.2 + labels.view(-1, 1, 1, 1) * 0.5  # separable by brightness
    losses = adamw_losses(model, x, labels, steps=8, lr=1e-3)
    assert losses[-1] < losses[0] * 0.7


def test_weights_round_trip_through_safetensors(tmp_path):
    from safetensors.torch import load_file, save_file

    from merkit.training.engine import cpu_state_dict

    torch.manual_seed(0)
    model = build_model("htnet", 3, "cpu").eval()
    save_file(cpu_state_dict(model), str(tmp_path / "w.safetensors"))
    torch.manual_seed(1)
    other = build_model("htnet", 3, "cpu").eval()
    x = inputs(2)
    assert not torch.equal(other(x).logits, model(x).logits)
    other.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
    assert torch.equal(other(x).logits, model(x).logits)


def test_face_points_are_eye_centres_nose_tip_and_mouth_corners_in_units_of_the_side():
    from merkit.face.regions import FACE_POINT_NAMES, face_points

    landmarks = np.zeros((68, 2))
    landmarks[36:42] = [[10, 20], [12, 18], [14, 18], [16, 20], [14, 22], [12, 22]]  # eye centre (13, 20)
    landmarks[42:48] = landmarks[36:42] + [30, 0]
    landmarks[30], landmarks[48], landmarks[54] = [28, 35], [15, 50], [41, 50]
    points = face_points(landmarks, 56)
    assert FACE_POINT_NAMES == ("eye_left", "eye_right", "nose", "mouth_left", "mouth_right")
    expected = (np.array([[13, 20], [43, 20], [28, 35], [15, 50], [41, 50]]) + 0.5) / 56
    np.testing.assert_allclose(points, expected, rtol=1e-6)
    assert points.dtype == np.float32 and face_points(landmarks[None], 56).shape == (1, 5, 2)


def test_the_composite_reader_gives_face_points_from_the_apex_crops(tmp_path):
    import cv2
    import pandas as pd
    import skimage

    from merkit.face.landmarks import detect_landmarks
    from merkit.face.regions import face_points
    from merkit.inputs.composite import read_composite

    grey = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    landmarks, _, _ = detect_landmarks(grey)
    cx, cy = landmarks.mean(0).astype(int)
    crop = np.ascontiguousarray(grey[cy - 90:cy + 90, cx - 90:cx + 90])
    (tmp_path / "flow").mkdir()
    (tmp_path / "apex").mkdir()
    cv2.imwrite(str(tmp_path / "flow" / "a.png"), np.zeros((28, 28, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "apex" / "a.png"), crop)
    pd.DataFrame([{"dataset": "casme2", "subject": "sub01", "sample": "EP01", "label": 0, "emotion": "negative",
                   "flow": "flow/a.png", "apex": "apex/a.png"}]).to_csv(tmp_path / "manifest.csv", index=False)
    fs = read_composite(tmp_path, with_face_points=True, with_au_boxes=True)
    points = fs.inputs["face_points"][0].numpy()
    assert fs.inputs["face_points"].shape == (1, 5, 2) and fs.inputs["au_boxes"].shape == (1, 9, 4)
    crop_landmarks, _, _ = detect_landmarks(crop)
    np.testing.assert_allclose(points, face_points(crop_landmarks, 180), atol=1e-6)
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]  # left of right
    assert points[:2, 1].max() < points[2, 1] < points[3:, 1].min()  # eyes above the nose above the mouth
    assert any("face points" in note for note in fs.notes)

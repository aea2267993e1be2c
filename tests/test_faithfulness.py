"""A faithfulness-table row is a claim: where code can check a row of docs/models.md (a preset's value, a default, a
layer's setting, a shipped config's recipe), a test here does. Each case names its table and row."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from merkit.config import load_config
from merkit.models import build_model
from merkit.models.base import model_info

CONFIGS = Path(__file__).parents[1] / "configs"


def _config(name: str):
    return load_config(CONFIGS / name)


def _preset(model: str, preset: str = "paper", **params):
    return model_info(model, preset, **params).config


def _quiet(name: str, preset: str, **params) -> nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SLSTT's "randomly initialised" warning
        return build_model(name, 3, preset, **params)


# ------------------------------------------------------------------------------------------------------- STSTNet

def ststnet_padding_2():
    model = _quiet("ststnet", "paper")
    assert all(b.padding == (2, 2) and b.kernel_size == (3, 3) for b in model.branches)
    assert [b.out_channels for b in model.branches] == [3, 5, 8]


def ststnet_pools():
    model = _quiet("ststnet", "paper")
    assert (model.max_pool.kernel_size, model.max_pool.stride, model.max_pool.padding) == (3, 3, 1)
    assert (model.avg_pool.kernel_size, model.avg_pool.stride, model.avg_pool.padding) == (2, 2, 0)
    assert model.fc.in_features == 5 * 5 * 16


def ststnet_branch_dropout():
    config = _preset("ststnet")
    assert (config.branch_dropout, config.dropout) == (0.5, 0.0)


def ststnet_bgr_0_255():
    config = _preset("ststnet")
    assert (config.input_scale, config.bgr) == (255.0, True)


def ststnet_authors_recipe():
    c = _config("megc2019/ststnet-authors.yaml")
    t = c.training
    assert (c.model.name, c.model.preset, c.model.params) == ("ststnet", "paper", {})
    assert (t.optimizer, t.lr, t.batch_size, t.epochs, t.weight_decay) == ("adam", 5e-5, 256, 800, 0.0)
    assert (t.scheduler, t.class_weighted, t.augment, t.shuffle) == ("none", False, [], False)
    assert c.protocol.selection == "last"


def ststnet_shipped_recipe_keeps_merkits_network():
    c = _config("megc2019/ststnet.yaml")
    config = _preset("ststnet", c.model.preset, **c.model.params)
    assert (config.padding, config.branch_dropout, config.input_scale, config.bgr, config.dropout) == \
        (1, 0.0, 1.0, False, 0.5)


# --------------------------------------------------------------------------------------------------------- MMNet

def mmnet_pc_resize_not_antialiased():
    for preset in ("paper", "paper-3class"):
        assert _preset("mmnet", preset).pc_antialias is False
    from merkit.models.mmnet import prepare_position

    image = torch.rand(2, 3, 224, 224)
    plain = F.interpolate(image, size=(14, 14), mode="bilinear", align_corners=False)
    assert torch.equal(prepare_position(image, 14, False, antialias=False), plain)
    assert not torch.allclose(prepare_position(image, 14, False, antialias=True), plain)


def mmnet_pc_init_trunc_normal():
    model = _quiet("mmnet", "paper")
    linears = [m for m in model.pc.blocks.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 2 * 3  # per block: the attention's output projection and the MLP's two layers
    for m in linears:
        assert m.weight.abs().max() <= 2.0 and abs(m.weight.std().item() - 0.02) < 0.002
        assert torch.count_nonzero(m.bias) == 0
    for attn in (b.attn for b in model.pc.blocks):
        assert abs(attn.in_proj_weight.std().item() - 0.02) < 0.002 and torch.count_nonzero(attn.in_proj_bias) == 0


def mmnet_pc_layernorm_eps():
    model = _quiet("mmnet", "paper")
    norms = [m for m in model.pc.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(m.eps == 1e-6 for m in norms)


def mmnet_rotation_nearest():
    for name in ("casme2/mmnet-5class.yaml", "casme2/mmnet-3class.yaml", "samm/mmnet-5class.yaml",
                 "mmew/mmnet-4class.yaml", "casme3/mmnet-4class.yaml"):
        t = _config(name).training
        assert "rotate" in t.augment and "rotate3" not in t.augment, name
        assert t.augment_params["rotate"]["order"] == 0, name
    assert _config("casme2/mmnet-5class.yaml").training.augment_params["rotate"]["degrees"] == 3
    assert _config("casme2/mmnet-3class.yaml").training.augment_params["rotate"]["degrees"] == 4


# --------------------------------------------------------------------------------------------------------- SLSTT

def slstt_layernorm_eps():
    from merkit.models.slstt import vit_config

    assert _preset("slstt").layer_norm_eps == 1e-6
    assert vit_config(_preset("slstt")).layer_norm_eps == 1e-6
    model = _quiet("slstt", "cpu", layer_norm_eps=1e-6)
    norms = [m for m in model.encoder.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(m.eps == 1e-6 for m in norms)


def slstt_freeze_keeps_final_layernorm_trainable():
    model = _quiet("slstt", "cpu", freeze_encoder=True)
    trainable = {n for n, p in model.encoder.named_parameters() if p.requires_grad}
    assert trainable == {"layernorm.weight", "layernorm.bias"}


# --------------------------------------------------------------------------------------------------------- HTNet

def htnet_no_shuffle():
    c = _config("megc2019/paper-htnet.yaml")
    t = c.training
    assert (t.shuffle, t.optimizer, t.lr, t.batch_size, t.epochs) == (False, "adam", 5e-5, 256, 800)


# ------------------------------------------------------------------------------------------------------- CVA+FPF

def cva_table5_vit_without_class_token():
    model = _quiet("cva_fpf", "paper", fpf_backbone="vit")
    names = [n for n, _ in model.fpf.named_parameters()]
    assert not any("cls" in n for n in names)
    assert model.fpf.pos.shape == (1, 196, 512) and model.fpf.embed.kernel_size == (16, 16)
    assert len(model.fpf.blocks) == 2 and model.fpf.blocks[0].attn.num_heads == 4
    assert model.fpf.blocks[0].mlp[0].out_features == 4 * 512
    norms = [m for m in model.fpf.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(m.eps == 1e-6 for m in norms)


# ------------------------------------------------------------------------------------------------------- FRL-DGT

def frl_dgt_paper_is_the_full_model():
    config = _preset("frl_dgt")
    assert (config.self_supervised, config.regions, config.displacement) == (True, "au-input", "dgm")
    assert {"ss_onset", "ss_apex", "au_boxes"} <= set(model_info("frl_dgt", "paper").input_keys)


def frl_dgt_ablation_preset_is_the_old_default():
    config = _preset("frl_dgt", "ablation-m3-template")
    paper = _preset("frl_dgt")
    assert config == dataclasses.replace(paper, self_supervised=False, regions="au-template", flow_channels=3)


def frl_dgt_m0_two_channel_flow():
    assert _preset("frl_dgt").flow_channels == 2
    model = _quiet("frl_dgt", "cpu", displacement="flow", flow_channels=2)
    assert model.in_channels == 2 + 2 * model.config.image_channels  # (u, v) + onset + apex


def frl_dgt_configs_keep_their_meaning():
    expected = {"casme2/frl-dgt-4class.yaml": (True, "au-input"), "casme2/frl-dgt-5class.yaml": (True, "au-input"),
                "casme2/frl-dgt-s-4class.yaml": (True, "au-template"),
                "megc2019/frl-dgt-flow.yaml": (False, "au-input"), "synthetic/frl-dgt.yaml": (True, "au-input")}
    for name, (ss, regions) in expected.items():
        c = _config(name)
        config = _preset("frl_dgt", c.model.preset, **c.model.params)
        assert (config.self_supervised, config.regions) == (ss, regions), name
    flow = _config("megc2019/frl-dgt-flow.yaml").model
    assert _preset("frl_dgt", flow.preset, **flow.params).flow_channels == 3


ROWS = {
    "STSTNet / branch convolutions: 3, 5, 8 filters, 3x3, padding 2": ststnet_padding_2,
    "STSTNet / max pool 3x3 stride 3 padding 1, average pool 2x2 stride 2, fc 400": ststnet_pools,
    "STSTNet / dropout 0.5 after each branch's pooling": ststnet_branch_dropout,
    "STSTNet / input: BGR 0-255": ststnet_bgr_0_255,
    "STSTNet / authors' recipe (ststnet-authors.yaml)": ststnet_authors_recipe,
    "STSTNet / shipped recipe (ststnet.yaml, cpu preset)": ststnet_shipped_recipe_keeps_merkits_network,
    "MMNet / PC input resize": mmnet_pc_resize_not_antialiased,
    "MMNet / PC initialisation": mmnet_pc_init_trunc_normal,
    "MMNet / PC LayerNorm eps 1e-6": mmnet_pc_layernorm_eps,
    "MMNet / rotation interpolation": mmnet_rotation_nearest,
    "SLSTT / LayerNorm eps": slstt_layernorm_eps,
    "SLSTT / encoder fine-tuned or frozen": slstt_freeze_keeps_final_layernorm_trainable,
    "HTNet / batch order": htnet_no_shuffle,
    "CVA+FPF / Table 5's ViT FPF": cva_table5_vit_without_class_token,
    "FRL-DGT / paper preset: self-supervision, AU boxes from landmarks": frl_dgt_paper_is_the_full_model,
    "FRL-DGT / the old default is a named ablation preset": frl_dgt_ablation_preset_is_the_old_default,
    "FRL-DGT / M0: 2-channel optical flow": frl_dgt_m0_two_channel_flow,
    "FRL-DGT / configs keep their meaning": frl_dgt_configs_keep_their_meaning,
}


@pytest.mark.parametrize("row", list(ROWS))
def test_table_row_holds(row):
    ROWS[row]()


def test_slstt_paper_eps_reaches_loaded_hugging_face_weights(tmp_path):
    """Weights written by Hugging Face carry eps 1e-12 in their config; the paper preset loads them with 1e-6."""
    from transformers import ViTConfig, ViTModel

    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=28, patch_size=4, layer_norm_eps=1e-12), add_pooling_layer=False
             ).save_pretrained(tmp_path)
    model = _quiet("slstt", "cpu", weights_dir=str(tmp_path), layer_norm_eps=1e-6, hidden_size=32, num_layers=1,
                   num_heads=2, mlp_size=64)
    norms = [m for m in model.encoder.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(m.eps == 1e-6 for m in norms)


def test_rotation_with_order_0_only_moves_pixels():
    """``rotate`` at order 0 (torchvision RandomRotation's nearest) brings in no value the image did not have."""
    from merkit.training.augment import rotate

    image = torch.randint(0, 5, (4, 3, 28, 28)).float()
    near = rotate({"flow": image}, {}, torch.Generator().manual_seed(0), degrees=20.0, order=0)["flow"]
    assert set(near.unique().tolist()) <= set(image.unique().tolist())
    bilinear = rotate({"flow": image}, {}, torch.Generator().manual_seed(0), degrees=20.0)["flow"]
    assert not set(bilinear.unique().tolist()) <= set(image.unique().tolist())


def test_rotate_order_other_than_0_or_1_is_refused_when_the_config_loads():
    from merkit.errors import ConfigError

    with pytest.raises(ConfigError, match="order.*one of \\[0, 1\\]"):
        load_config(None, ["training.augment=[rotate]", "training.augment_params={rotate: {order: 3}}"])


def test_without_shuffle_every_epoch_sees_the_rows_in_table_order():
    """``training.shuffle: false`` (the HTNet and STSTNet authors' loaders): the batch order does not depend on the
    seed's generator, so two generators give the same trained weights; with shuffling they do not."""
    from merkit.config import TrainConfig
    from merkit.training.engine import fit
    from tests.helpers import toy_flow_features

    train = toy_flow_features(subjects=2, per_class=4)

    def weights(shuffle: bool, seed: int) -> torch.Tensor:
        torch.manual_seed(0)
        model = build_model("ststnet", 3, "cpu")
        fit(model, train, TrainConfig(epochs=2, batch_size=8, shuffle=shuffle), torch.Generator().manual_seed(seed))
        return model.fc.weight.detach().clone()

    assert torch.equal(weights(False, 1), weights(False, 2))
    assert not torch.equal(weights(True, 1), weights(True, 2))

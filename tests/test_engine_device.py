"""The training engine's device support and per-module optimizer groups.

This machine has no GPU: CUDA code paths are checked on the ``meta`` device, which holds no data but fails the
way CUDA does when a CPU tensor meets a device tensor. One test needs a real GPU and is skipped without one.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from merkit.config import RunConfig, TrainConfig, load_config
from merkit.errors import ConfigError
from merkit.models import MODEL_MODULES, build_model
from merkit.training import engine
from merkit.training.augment import AUGMENTATIONS
from merkit.training.engine import (describe_environment, fit, make_optimizer, make_scheduler, predict_proba,
                                    resolve_device)
from merkit.training.loso import loso_folds
from merkit.cluster import gpu_share
from merkit.runfolder import RunFolder
from merkit.training.runner import compute_unit, run_loso, run_unit
from tests.helpers import toy_flow_features

pytestmark = pytest.mark.usefixtures("one_thread")

HAS_CUDA = torch.cuda.is_available()
FAST = ["training.epochs=2", "training.batch_size=16", "protocol.save_checkpoints=false"]


def _fit_ststnet(cfg: TrainConfig, seed: int = 0, subjects: int = 2):
    fs = toy_flow_features(subjects=subjects, per_class=3)
    torch.manual_seed(seed)
    model = build_model("ststnet", 3, "cpu")
    fit(model, fs, cfg, torch.Generator().manual_seed(seed))
    return model, fs


def _frl_dgt():
    return build_model("frl_dgt", 3, "cpu")


# ------------------------------------------------------------------------------------------------ device names


@pytest.mark.skipif(HAS_CUDA, reason="checks the behaviour of a machine without CUDA")
def test_auto_device_resolves_to_cpu_without_cuda():
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="checks the behaviour of a machine without CUDA")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0"])
def test_cuda_device_without_cuda_raises_config_error(spec):
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device(spec)


@pytest.mark.skipif(HAS_CUDA, reason="checks the behaviour of a machine without CUDA")
def test_run_on_an_unavailable_device_fails_before_training(tmp_path):
    fs = toy_flow_features(subjects=2)
    with pytest.raises(ConfigError, match="training.device"):
        run_loso(load_config(None, FAST + ["training.device=cuda"]).resolve(), fs, tmp_path / "run")
    assert not (tmp_path / "run" / "units").exists()


def test_auto_device_picks_cuda_when_available_and_a_missing_index_is_rejected(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ConfigError, match="only 1 CUDA device"):
        resolve_device("cuda:1")


@pytest.mark.parametrize("spec", ["gpu", "CPU", "cuda:x", "cuda:", "mps", ""])
def test_unknown_device_string_is_rejected_by_the_config_and_the_engine(spec):
    with pytest.raises(ConfigError, match="training.device"):
        load_config(None, [f"training.device='{spec}'"])
    with pytest.raises(ConfigError, match="training.device"):
        resolve_device(spec)


# ------------------------------------------------------------------------------------------------ CPU results


def test_explicit_cpu_device_gives_the_same_predictions_as_the_default():
    default, fs = _fit_ststnet(TrainConfig(epochs=2, batch_size=8))
    explicit, _ = _fit_ststnet(TrainConfig(epochs=2, batch_size=8, device="cpu"))
    expected = predict_proba(default, fs)
    assert expected.dtype == np.float64 and expected.shape == (len(fs), 3)
    np.testing.assert_array_equal(predict_proba(explicit, fs), expected)
    np.testing.assert_array_equal(predict_proba(explicit, fs, device="cpu"), expected)
    if not HAS_CUDA:
        auto, _ = _fit_ststnet(TrainConfig(epochs=2, batch_size=8, device="auto"))
        np.testing.assert_array_equal(predict_proba(auto, fs), expected)


def test_device_and_gpu_share_do_not_change_the_result_hash_but_param_groups_do():
    base = RunConfig().result_hash()
    assert load_config(None, ["training.device=auto", "protocol.gpus_per_fold=0.5"]).result_hash() == base
    assert load_config(None, ["training.param_groups={}"]).result_hash() == base
    assert load_config(None, ["training.param_groups={fc.: {lr: 0.01}}"]).result_hash() != base


def _drop_a_unit(run_dir):
    next((run_dir / "units").rglob("*.csv")).unlink()


def test_run_json_records_the_device_and_a_resume_on_another_device_adds_it(tmp_path, monkeypatch):
    fs = toy_flow_features(subjects=2)
    cfg = load_config(None, FAST)
    run_loso(cfg.resolve(), fs, tmp_path)
    assert RunFolder(tmp_path).provenance() == ["cpu"]
    stamp = json.loads((tmp_path / "run.json").read_text())
    monkeypatch.setattr("merkit.training.runner.describe_device", lambda device: "cuda:0 (test GPU)")
    _drop_a_unit(tmp_path)
    run_loso(cfg.resolve(), fs, tmp_path)  # the unit it recomputes records where it trained
    resumed = json.loads((tmp_path / "run.json").read_text())
    assert resumed["devices"] == ["cpu", "cuda:0 (test GPU)"]
    assert resumed["environments"] == stamp["environments"]  # same machine: recorded once
    assert {k: resumed[k] for k in ("result_hash", "data_fingerprint")} == {
        k: stamp[k] for k in ("result_hash", "data_fingerprint")}


def test_checkpoint_is_written_from_cpu_tensors_and_reproduces_the_fold_predictions(tmp_path):
    from safetensors.torch import load

    fs = toy_flow_features(subjects=2, per_class=3)
    cfg = load_config(None, FAST)
    fold = loso_folds(fs.table)[0]
    result = compute_unit(cfg.with_overrides(["protocol.save_checkpoints=true"]).resolve().protocol, fs, fold, seed=0)
    preds = result.predictions
    state = load(result.weights)
    assert {t.device.type for t in state.values()} == {"cpu"}
    model = build_model("ststnet", 3, None)
    model.load_state_dict(state)
    proba = predict_proba(model, fs.subset(fold.test_index))
    np.testing.assert_allclose(proba, preds[[f"prob_{c}" for c in fs.classes]].to_numpy(), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------------ non-CPU devices


MODEL_INPUTS = {
    "ststnet": ({}, {"flow": (2, 3, 28, 28)}),
    "mmnet": ({}, {"apex_minus_onset": (2, 3, 28, 28), "onset": (2, 3, 28, 28)}),
    "cva_fpf": ({}, {"apex_minus_onset": (2, 3, 28, 28), "onset": (2, 3, 28, 28), "apex": (2, 3, 28, 28)}),
    "slstt": ({"pretrained": None}, {"long_term_flow": (2, 11, 3, 28, 28)}),
    "frl_dgt": ({}, {"onset": (2, 3, 56, 56), "apex": (2, 3, 56, 56)}),
    "frl_dgt-au-input": ({"regions": "au-input"},
                         {"onset": (2, 3, 56, 56), "apex": (2, 3, 56, 56), "au_boxes": (2, 9, 4)}),
    "htnet": ({}, {"flow": (2, 3, 28, 28), "face_points": (2, 5, 2)}),
    "sssnet": ({}, {"flow": (2, 3, 28, 28)}),
    "off_apexnet": ({}, {"flow": (2, 2, 28, 28)}),
    "linear_svm": ({}, {"flow": (2, 3, 28, 28)}),
}


def test_every_registered_model_is_covered_by_the_device_check():
    assert set(MODEL_MODULES) <= {name.split("-")[0] for name in MODEL_INPUTS}


@pytest.mark.parametrize("name", sorted(MODEL_INPUTS))
def test_model_built_on_cpu_then_moved_runs_on_the_device_of_its_inputs(name):
    """No model creates a CPU tensor in ``forward``: on the meta device (a stand-in for CUDA) that would raise."""
    params, shapes = MODEL_INPUTS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SLSTT warns that its encoder is not pretrained
        model = build_model(name.split("-")[0], 3, "cpu", **params).to("meta")
    assert {t.device.type for t in (*model.parameters(), *model.buffers())} == {"meta"}
    inputs = {k: torch.rand(shape).to("meta") for k, shape in shapes.items()}
    for training in (True, False):
        out = model.train(training)(inputs)
        assert out.logits.device.type == "meta" and tuple(out.logits.shape) == (2, 3)
        assert all(loss.device.type == "meta" for loss in out.aux_losses.values())


def test_fit_moves_the_model_and_every_batch_tensor_to_the_device(monkeypatch):
    """A fit on the meta device fails if a batch, the labels or the class weights stay on the CPU."""
    monkeypatch.setattr(engine, "resolve_device", lambda spec: torch.device("meta"))
    model, _ = _fit_ststnet(TrainConfig(epochs=2, batch_size=8, class_weighted=True, augment=["hflip"],
                                        scheduler="cosine", param_groups={"fc.": {"lr": 0.01}}))
    assert {p.device.type for p in model.parameters()} == {"meta"}


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_augmentation_hook_keeps_a_device_batch_on_its_device(name):
    """Every registered hook, on a batch holding every key a hook reads, all on the meta device."""
    shapes = {"flow": (4, 3, 28, 28), "onset": (4, 1, 56, 56), "apex": (4, 1, 56, 56),
              "apex_minus_onset": (4, 1, 56, 56), "au_boxes": (4, 9, 4), "onset_window": (4, 3, 1, 56, 56),
              "apex_window": (4, 3, 1, 56, 56)}
    inputs = {k: torch.rand(shape).to("meta") for k, shape in shapes.items()}
    out = AUGMENTATIONS[name](inputs, {"flow_channels": ["u", "v", "strain"]}, torch.Generator().manual_seed(0))
    assert out and {v.device.type for v in out.values()} == {"meta"}


@pytest.mark.parametrize("name", ["temporal_jitter", "apex_jitter"])
def test_a_code_derived_jitter_mode_keeps_a_device_batch_on_its_device(name):
    """In the inward mode the draws depend on the per-sample bounds, which stay on the batch's device."""
    shapes = {"onset": (4, 1, 8, 8), "apex": (4, 1, 8, 8), "apex_minus_onset": (4, 1, 8, 8),
              "onset_window": (4, 5, 1, 8, 8), "apex_window": (4, 5, 1, 8, 8)}
    inputs = {k: torch.rand(shape).to("meta") for k, shape in shapes.items()}
    inputs["jitter_bounds"] = torch.zeros(4, 4, dtype=torch.long).to("meta")
    meta = {"preprocessing": {"motion": {"jitter_mode": "inward"}}}
    out = AUGMENTATIONS[name](inputs, meta, torch.Generator().manual_seed(0))
    assert set(out) == {"onset", "apex", "apex_minus_onset"} and {v.device.type for v in out.values()} == {"meta"}


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_cuda_training_matches_cpu_training_and_its_checkpoint_predicts_on_cpu(tmp_path, monkeypatch):
    from safetensors.torch import load

    # TF32 convolutions (PyTorch's default on Ampere and later) differ from float32 by about 1e-3.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    fs = toy_flow_features(subjects=2, per_class=3)
    fold = loso_folds(fs.table)[0]
    cpu = run_unit(load_config(None, FAST).resolve().protocol, fs, fold, seed=0)
    cuda = load_config(None, FAST + ["training.device=cuda", "protocol.save_checkpoints=true"]).resolve()
    result = compute_unit(cuda.protocol, fs, fold, seed=0)
    cuda = result.predictions
    columns = [f"prob_{c}" for c in fs.classes]
    np.testing.assert_allclose(cuda[columns].to_numpy(), cpu[columns].to_numpy(), rtol=0, atol=1e-4)
    model = build_model("ststnet", 3, None)
    model.load_state_dict(load(result.weights))
    on_cpu = predict_proba(model, fs.subset(fold.test_index))
    np.testing.assert_allclose(on_cpu, cuda[columns].to_numpy(), rtol=0, atol=1e-4)


# ------------------------------------------------------------------------------------------------ Ray GPU share


@pytest.mark.parametrize("override", ["protocol.gpus_per_fold=1.5", "protocol.gpus_per_fold=-0.5"])
def test_gpu_share_outside_zero_to_one_is_rejected(override):
    with pytest.raises(ConfigError, match="gpus_per_fold"):
        load_config(None, ["training.device=cuda", override])


def test_gpu_share_on_a_cpu_device_is_rejected():
    with pytest.raises(ConfigError, match="gpus_per_fold"):
        load_config(None, ["protocol.gpus_per_fold=0.5"])


def test_numbered_cuda_device_with_ray_workers_is_rejected():
    with pytest.raises(ConfigError, match="cuda:1"):
        load_config(None, ["training.device=cuda:1", "protocol.workers=2"])
    assert load_config(None, ["training.device=cuda:1"]).training.device == "cuda:1"  # one worker: fine


def test_ray_units_request_a_gpu_share_only_on_cuda(monkeypatch):
    assert gpu_share("auto", 0.0, 2) == (0.5 if HAS_CUDA else 0.0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert gpu_share("cuda", 0.0, 4) == 0.25
    assert gpu_share("cuda", 1.0, 4) == 1.0
    assert gpu_share("cpu", 0.0, 4) == 0.0
    assert gpu_share("auto", 0.0, 4, cluster_gpus=0.0) == 0.0  # a cluster without GPUs
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device"):
        gpu_share("cuda", 0.0, 2)


# ------------------------------------------------------------------------------------------------ param groups


def _groups_by_prefix(optimizer: torch.optim.Optimizer) -> dict:
    return {group["prefix"]: group for group in optimizer.param_groups}


def test_parameters_join_the_group_of_their_longest_matching_prefix():
    model = _frl_dgt()
    cfg = TrainConfig(lr=1e-3, param_groups={"dgm.": {"lr": 0.002}, "dgm.out.": {"lr": 0.1, "weight_decay": 0.01}})
    groups = _groups_by_prefix(make_optimizer(model, cfg))
    assert list(groups) == [None, "dgm.", "dgm.out."]
    named = dict(model.named_parameters())
    members = {prefix: {id(p) for p in group["params"]} for prefix, group in groups.items()}
    assert members["dgm.out."] == {id(named["dgm.out.weight"]), id(named["dgm.out.bias"])}
    assert members["dgm."] == {id(p) for n, p in named.items() if n.startswith("dgm.") and ".out." not in f".{n}"}
    assert members[None] == {id(p) for n, p in named.items() if not n.startswith("dgm.")}
    assert (groups[None]["lr"], groups["dgm."]["lr"], groups["dgm.out."]["lr"]) == (1e-3, 0.002, 0.1)
    assert (groups[None]["weight_decay"], groups["dgm."]["weight_decay"], groups["dgm.out."]["weight_decay"]) == (
        0.0, 0.0, 0.01)


def test_without_param_groups_there_is_one_group_of_all_trainable_parameters():
    model = _frl_dgt()
    optimizer = make_optimizer(model, TrainConfig(lr=1e-3))
    assert len(optimizer.param_groups) == 1
    assert len(optimizer.param_groups[0]["params"]) == len(list(model.parameters()))


def test_prefix_matching_no_parameter_raises_naming_it_and_the_existing_prefixes():
    with pytest.raises(ConfigError, match=r"'fusion\.'.*'dgm\.'.*'head\.'"):
        make_optimizer(_frl_dgt(), TrainConfig(param_groups={"fusion.": {"lr": 1e-3}}))


@pytest.mark.parametrize("groups", ["{dgm.: {beta: 0.9}}", "{dgm.: 0.002}", "{dgm.: {lr: fast}}",
                                    "{dgm.: {momentum: 0.5}}", "{dgm.: {schedule: 0}}", "[dgm.]"])
def test_malformed_param_groups_are_rejected(groups):
    with pytest.raises(ConfigError, match="param_groups"):
        load_config(None, [f"training.param_groups={groups}"])


def test_param_groups_override_parses_and_yaml_exponents_become_floats():
    cfg = load_config(None, ["training.param_groups={dgm: {lr: 2e-3}, dgm.out.: {schedule: false}}"])
    assert cfg.training.param_groups == {"dgm": {"lr": 0.002}, "dgm.out.": {"schedule": False}}
    assert isinstance(cfg.training.param_groups["dgm"]["lr"], float)


def test_schedulers_scale_every_group_alike_unless_a_group_opts_out():
    model = _frl_dgt()
    for scheduler in ("cosine", "step", "exponential"):
        cfg = TrainConfig(epochs=10, lr=1e-3, scheduler=scheduler, scheduler_params={"step_size": 3},
                          param_groups={"dgm.": {"lr": 0.002}, "head.": {"lr": 0.004, "schedule": False}})
        optimizer = make_optimizer(model, cfg)
        scheduler_ = make_scheduler(optimizer, cfg)
        for _ in range(4):
            optimizer.step()
            scheduler_.step()
        groups = _groups_by_prefix(optimizer)
        assert groups[None]["lr"] < 1e-3
        assert groups["dgm."]["lr"] == pytest.approx(2 * groups[None]["lr"], rel=1e-12)
        assert groups["head."]["lr"] == 0.004


def test_cosine_without_opt_out_is_torchs_cosine_annealing_and_the_opt_out_path_follows_the_same_curve():
    model = _frl_dgt()
    lrs = {}
    for name, head in (("torch", {"lr": 0.004}), ("lambda", {"lr": 0.004, "schedule": False})):
        cfg = TrainConfig(epochs=10, lr=1e-3, scheduler="cosine", param_groups={"dgm.": {"lr": 0.002}, "head.": head})
        optimizer = make_optimizer(model, cfg)
        scheduler = make_scheduler(optimizer, cfg)
        assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) == (name == "torch")
        curve = []
        for _ in range(10):
            optimizer.step()
            scheduler.step()
            curve.append([group["lr"] for group in optimizer.param_groups])
        lrs[name] = np.array(curve)
    np.testing.assert_allclose(lrs["lambda"][:, :2], lrs["torch"][:, :2], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(lrs["torch"][:, 1], 2 * lrs["torch"][:, 0], rtol=1e-12, atol=1e-15)
    assert lrs["torch"][-1, 0] == pytest.approx(0.0, abs=1e-15) and (lrs["lambda"][:, 2] == 0.004).all()


def test_fit_with_a_zero_lr_group_leaves_that_module_unchanged_and_trains_the_rest():
    fs = toy_flow_features(subjects=2, per_class=3)
    torch.manual_seed(0)
    model = build_model("ststnet", 3, "cpu")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    fit(model, fs, TrainConfig(epochs=2, batch_size=8, param_groups={"fc.": {"lr": 0.0}}),
        torch.Generator().manual_seed(0))
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before if n.startswith("fc."))
    assert not any(torch.equal(before[n], after[n]) for n in before if n.startswith("branches."))


# ------------------------------------------------------------------------------------------------ fused optimizer


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_fused_optimizer_is_torchs_fused_kernel_and_off_by_default(optimizer):
    model = _frl_dgt()
    assert make_optimizer(model, TrainConfig(optimizer=optimizer)).defaults["fused"] is None
    fused = make_optimizer(model, TrainConfig(optimizer=optimizer, fused_optimizer=True,
                                              param_groups={"dgm.": {"lr": 0.002}}))
    assert fused.defaults["fused"] is True and len(fused.param_groups) == 2


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_fused_optimizer_follows_the_same_update_rule_to_rounding(optimizer):
    cfg = dict(epochs=3, batch_size=8, optimizer=optimizer, lr=1e-3, weight_decay=1e-3)
    plain, fs = _fit_ststnet(TrainConfig(**cfg))
    fused, _ = _fit_ststnet(TrainConfig(**cfg, fused_optimizer=True))
    torch.manual_seed(0)
    start = build_model("ststnet", 3, "cpu")  # what _fit_ststnet starts from: the same seed, the same weights
    for (name, p), f, s in zip(plain.named_parameters(), fused.parameters(), start.parameters()):
        moved = (p - s).abs().max().item()
        assert moved > 1e-6, name  # both trained ...
        torch.testing.assert_close(f, p, rtol=1e-4, atol=1e-3 * moved)  # ... and alike far below their steps
    np.testing.assert_allclose(predict_proba(fused, fs), predict_proba(plain, fs), atol=1e-4)


def test_fused_optimizer_joins_the_result_hash_and_the_reports_recipe_line_only_when_on():
    from merkit.evaluation.report import training_recipe

    base = load_config(None, [])
    on = load_config(None, ["training.fused_optimizer=true"])
    assert "fused_optimizer" not in base.to_dict()["training"] and on.to_dict()["training"]["fused_optimizer"]
    assert load_config(None, ["training.fused_optimizer=false"]).result_hash() == base.result_hash()
    assert on.result_hash() != base.result_hash()
    assert training_recipe(on.training).startswith("adam (fused) lr")
    assert "fused" not in training_recipe(base.training)


def test_a_torch_without_the_fused_kernel_gives_a_config_error(monkeypatch):
    def old_torch(params, lr, weight_decay, fused=None):  # torch < 2.4 had fused Adam for CUDA only
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported "
                               "devices: ['cuda'].")
        return torch.optim.SGD(params, lr=lr)

    monkeypatch.setattr(torch.optim, "Adam", old_torch)
    assert isinstance(make_optimizer(_frl_dgt(), TrainConfig()), torch.optim.SGD)
    with pytest.raises(ConfigError, match=r"training.fused_optimizer: torch .* no fused adam kernel .*'cuda'"):
        make_optimizer(_frl_dgt(), TrainConfig(fused_optimizer=True))


def test_run_json_records_the_machine_and_a_resume_on_another_machine_adds_it(tmp_path, monkeypatch):
    here = describe_environment()
    assert f"torch {torch.__version__}" in here and torch.backends.cpu.get_cpu_capability() in here
    fs = toy_flow_features(subjects=2)
    cfg = load_config(None, FAST)
    run_loso(cfg.resolve(), fs, tmp_path)
    assert RunFolder(tmp_path).provenance("environments") == [here]
    monkeypatch.setattr("merkit.training.runner.describe_environment", lambda: "other host (AVX2), torch 0")
    _drop_a_unit(tmp_path)
    run_loso(cfg.resolve(), fs, tmp_path)
    run_loso(cfg.resolve(), fs, tmp_path)  # nothing left to run: nothing added
    assert RunFolder(tmp_path).provenance("environments") == [here, "other host (AVX2), torch 0"]
    assert RunFolder(tmp_path).provenance() == ["cpu"]

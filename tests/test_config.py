import pytest

from merkit.config import load_config
from merkit.errors import ConfigError


def test_overrides_are_typed():
    cfg = load_config(None, ["training.lr=1e-3", "protocol.seeds=[0,1]", "training.epochs=7"])
    assert cfg.training.lr == 0.001 and isinstance(cfg.training.lr, float)
    assert cfg.protocol.seeds == [0, 1] and cfg.training.epochs == 7


@pytest.mark.parametrize("override", ["training.epochz=3", "training.epochs=abc", "protocol.selection=best",
                                      "training.epochs=0", "nonsense"])
def test_bad_config_is_rejected(override):
    with pytest.raises(ConfigError):
        load_config(None, [override])


def test_result_hash_ignores_workers_and_seeds_but_not_training():
    base = load_config(None, []).result_hash()
    assert load_config(None, ["protocol.workers=4", "protocol.seeds=[3]"]).result_hash() == base
    assert load_config(None, ["training.epochs=3"]).result_hash() != base
    # A diagnostic that leaves the predictions alone keeps the hash (a run can be resumed with it switched on).
    assert load_config(None, ["protocol.record_epochs=true"]).result_hash() == base
    # A new key at its default keeps older runs' hashes; set, it changes the predictions and the hash.
    assert load_config(None, ["training.ema_decay=0"]).result_hash() == base
    assert load_config(None, ["training.ema_decay=0.99"]).result_hash() != base


def test_shipped_composite_config_loads():
    from pathlib import Path

    cfg = load_config(Path(__file__).parents[1] / "configs" / "megc2019" / "ststnet.yaml")
    assert cfg.model.name == "ststnet" and cfg.protocol.selection == "last"


def test_every_shipped_config_parses():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)  # raises ConfigError on an unknown key or a mistyped value


def _shipped(pattern: str):
    from pathlib import Path

    return {str(p.relative_to(Path(__file__).parents[1])): load_config(p)
            for p in sorted((Path(__file__).parents[1] / "configs").glob(pattern))}


def test_paper_network_configs_train_on_the_gpu_when_there_is_one():
    """Every config of a paper-size network sets training.device auto, except the tiny ones whose figures are CPU
    runs: STSTNet (its config says so), MEB's SSSNet and OFF-ApexNet (1.3 and 0.8 M parameters; issue 32's
    headline runs are CPU runs) and the linear SVM (a scikit-learn fit)."""
    paper = {p: c for p, c in _shipped("*/*.yaml").items() if c.model.preset in ("paper", "paper-3class")}
    assert len(paper) == 25
    tiny = {"ststnet", "sssnet", "off_apexnet", "linear_svm"}
    for path, config in paper.items():
        assert config.training.device == ("cpu" if config.model.name in tiny else "auto"), path


def test_mmnet_and_cva_raw_configs_use_the_alignment_closest_to_the_papers():
    raw = {p: c for p, c in _shipped("*/*.yaml").items()
           if c.data.kind == "raw" and c.model.name in ("mmnet", "cva_fpf") and c.model.preset != "cpu"}
    assert len(raw) == 11
    for path, config in raw.items():
        face = config.data.face
        assert (face.align, face.crop, face.mode, face.reference, face.stabilise) == (
            "piecewise-affine", "eyes", "clip", "onset", "none"), path
        jitter = "temporal_jitter" in config.training.augment
        assert jitter == (config.model.name == "mmnet"), path  # the CVA paper lists no temporal jitter


def test_the_mmnet_3class_config_is_the_authors_3class_script():
    config = _shipped("casme2/mmnet-3class.yaml")["configs/casme2/mmnet-3class.yaml"]
    t = config.training
    assert (t.batch_size, t.epochs, t.lr, t.weight_decay, t.scheduler_params) == (
        24, 99, 8e-4, 0.7, {"gamma": 0.987, "decay_epochs": 50})
    assert t.augment == ["temporal_jitter", "hflip", "rotate", "random_crop"]
    assert t.augment_params == {"rotate": {"degrees": 4, "order": 0}, "random_crop": {"padding": 4}}
    assert (config.data.motion.jitter_mode, config.data.motion.jitter) == ("mmnet-3class", 4)
    assert config.model.preset == "paper-3class"

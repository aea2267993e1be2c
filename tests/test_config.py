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

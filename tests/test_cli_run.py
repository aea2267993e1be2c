import json

from typer.testing import CliRunner

from merkit.cli import app
from tests.helpers import write_flow_folder


def test_evaluate_report_compare_and_train_from_the_command_line(tmp_path):
    data = write_flow_folder(tmp_path / "flows")
    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(app, ["evaluate", "--data", str(data), "--out", str(run), "--epochs", "3",
                              "--seeds", "0,1", "--quiet", "--set", "training.batch_size=8"])
    assert res.exit_code == 0, res.output
    assert "UF1" in res.output and "honest" in res.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["seeds"] == [0, 1] and metrics["selection"] == "last"
    assert len(list((run / "checkpoints").rglob("*.safetensors"))) == 2 * 3

    res = runner.invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["compare", str(run), str(run)])
    assert res.exit_code == 0, res.output
    table = [line for line in res.output.splitlines() if line.startswith("|")]
    assert table[0].startswith("| run | selection | seeds | samples | subjects | data | full UF1 | full UAR")
    assert len(table) == 2 + 2 and all("fixed 3 epochs" in row for row in table[2:])

    ckpt = tmp_path / "ckpt"
    res = runner.invoke(app, ["train", "--data", str(data), "--out", str(ckpt), "--epochs", "2"])
    assert res.exit_code == 0, res.output
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    assert meta["classes"] == ["negative", "positive", "surprise"] and meta["training_data"]["subjects"] == 3
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "config.yaml").is_file()


def test_bad_override_gives_a_clear_error(tmp_path):
    res = CliRunner().invoke(app, ["evaluate", "--set", "training.epochz=3"])
    assert res.exit_code == 2
    assert res.output.startswith("error: unknown config key training.epochz (did you mean 'epochs'?)") and \
        "Traceback" not in res.output

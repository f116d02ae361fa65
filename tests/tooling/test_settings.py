"""Settings that cannot work stop at start-up with one line naming the key; metrics=none picks a loss monitor."""

import os
import subprocess
import sys

import pytest

from genlab.run import train
from genlab.settings import SettingError, check_settings
from tests.gan.test_gan_training import SHORT
from tests.helpers.config import ROOT, requires_mnist


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs=abc is not a whole number; set e.g. trainer.max_epochs=10"),
        ("data.batch_size=0", "data.batch_size=0 must be at least 1; set e.g. data.batch_size=64"),
        ("data.batch_size=-5", "data.batch_size=-5 must be at least 1"),
        ("data.batch_size=abc", "data.batch_size=abc is not a whole number"),
        ("data.batch_size=1.5", "data.batch_size=1.5 is not a whole number"),
    ],
)
def test_a_mistyped_number_is_refused_naming_the_key(make_config, override, message):
    with pytest.raises(SettingError, match=message):
        check_settings(make_config("experiment=dcgan", override))


def test_metrics_none_makes_gan_checkpoints_follow_the_held_out_discriminator_loss(make_config):
    cfg = make_config("experiment=dcgan", "metrics=none")
    check_settings(cfg)
    assert (cfg.callbacks.model_checkpoint.monitor, cfg.callbacks.model_checkpoint.mode) == ("val/d_loss", "max")


def test_a_sample_metric_monitor_without_metrics_is_refused_for_a_family_without_a_loss_monitor(make_config):
    cfg = make_config("experiment=vae", "metrics=none", "callbacks.model_checkpoint.monitor=val/fid")
    with pytest.raises(SettingError, match="monitor=val/fid needs FID/IS, which metrics=none switches off"):
        check_settings(cfg)


@requires_mnist
def test_a_gan_trains_with_metrics_none_and_keeps_its_best_checkpoint(make_config, tmp_path):
    overrides = [o for o in SHORT if not o.startswith("callbacks.model_checkpoint")]
    train(make_config("experiment=dcgan", *overrides, "trainer.max_epochs=1"))
    assert list((tmp_path / "checkpoints").glob("best-epoch*.ckpt")), "no best checkpoint by val/d_loss"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["experiment=dcgan", "data.batch_size=0"], "error: data.batch_size=0 must be at least 1"),
        ([], "error: say which model to train: python train.py experiment=<name>"),
    ],
)
def test_the_cli_prints_one_line_and_writes_it_to_the_run_log(tmp_path, arguments, message):
    command = [sys.executable, "train.py", *arguments, "logger=csv", f"paths.log_dir={tmp_path}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(message) and len(result.stderr.strip().splitlines()) == 1, result.stderr
    (run_log,) = tmp_path.rglob("train.log")
    assert message.removeprefix("error: ") in run_log.read_text()


def test_an_unexpected_error_leaves_its_traceback_in_the_run_log(tmp_path):
    command = [sys.executable, "train.py", "experiment=dcgan", "logger=csv", "data.val_fraction=2"]
    result = subprocess.run(
        [*command, f"paths.log_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    (run_log,) = tmp_path.rglob("train.log")
    assert "Traceback" in run_log.read_text() and "val_fraction must be in (0, 1), got 2" in run_log.read_text()


@pytest.mark.slow
def test_started_elsewhere_it_says_where_folders_go_and_a_missing_dataset_leaves_none(tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), "experiment=dcgan", "logger=csv"]
    env = {**os.environ, "DATA_ROOT": "nowhere", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1
    assert f"Running outside {ROOT}: data (DATA_ROOT) in {tmp_path / 'nowhere'}" in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("error: mnist not found under nowhere/MNIST/raw")
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert "\n" not in result.stderr.split("error: ", 1)[1].strip(), "the error is one line"
    assert not (tmp_path / "nowhere").exists()

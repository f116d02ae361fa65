"""Common Trainer keys work without `+`, and mean the same for the manual-optimization GANs."""

import csv
import math
import subprocess

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor

from genlab.run import compose_config, instantiate_all, train
from genlab.trainer_settings import StopAfterBatches, TrainerSettingError, manual_optimization_settings
from lightning_modules.callbacks.gradient_norm_monitor import GradientNormMonitor
from lightning_modules.callbacks.progress_bars import MonitoredMetricProgressBar
from tests.helpers.config import CONF, ROOT, requires_mnist

TINY_GAN = ["experiment=dcgan", "model.generator.base_width=8", "model.discriminator.base_width=8"]
EXPERIMENTS = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))


def test_common_trainer_keys_need_no_plus(make_config):
    cfg = make_config(
        "experiment=dcgan",
        "trainer.max_steps=100",
        "trainer.val_check_interval=50",
        "trainer.gradient_clip_val=1.0",
        "trainer.max_time=00:01:00:00",
        "trainer.accumulate_grad_batches=1",
        "trainer.detect_anomaly=true",
    )
    assert (cfg.trainer.max_steps, cfg.trainer.val_check_interval, cfg.trainer.gradient_clip_val) == (100, 50, 1.0)


def test_gan_max_steps_becomes_a_batch_budget_and_clipping_goes_to_the_module(make_config):
    cfg = make_config(*TINY_GAN, "trainer.max_steps=7", "trainer.gradient_clip_val=0.5")
    module = instantiate(cfg.model)
    trainer_cfg, callbacks = manual_optimization_settings(cfg.trainer, module)
    assert trainer_cfg.max_steps == -1 and trainer_cfg.gradient_clip_val is None
    assert [type(c) for c in callbacks] == [StopAfterBatches] and callbacks[0].max_batches == 7
    assert module.hparams.gradient_clip_val == 0.5
    assert cfg.trainer.max_steps == 7, "the run's own config keeps what the user typed"


def test_automatic_optimization_keeps_the_trainer_settings(make_config):
    cfg = make_config("experiment=vae", "trainer.max_steps=7", "trainer.gradient_clip_val=0.5")
    trainer_cfg, callbacks = manual_optimization_settings(cfg.trainer, instantiate(cfg.model))
    assert trainer_cfg is cfg.trainer and callbacks == []


def test_gan_gradient_accumulation_is_refused_naming_the_setting(make_config):
    cfg = make_config(*TINY_GAN, "trainer.accumulate_grad_batches=4")
    with pytest.raises(TrainerSettingError, match="trainer.accumulate_grad_batches=4: GAN .* data.batch_size"):
        manual_optimization_settings(cfg.trainer, instantiate(cfg.model))


@pytest.mark.slow
@requires_mnist
def test_a_short_gan_run_trains_max_steps_batches_and_logs_lr_and_gradient_norms(make_config, tmp_path):
    train(
        make_config(
            *TINY_GAN,
            "metrics=none",
            "callbacks.model_checkpoint.monitor=null",
            "callbacks.sample_grid=null",
            "trainer.max_steps=3",
            "trainer.gradient_clip_val=1.0",
            "trainer.log_every_n_steps=1",
            "trainer.limit_val_batches=1",
            "trainer.num_sanity_val_steps=0",
            "data.batch_size=8",
            "test=false",
        )
    )
    with (tmp_path / "csv" / "version_0" / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    trained = [row for row in rows if row["train/d_loss"]]
    assert [int(row["step"]) for row in trained] == [0, 1, 2], "trainer.max_steps=3 must train 3 batches"
    assert [int(row["step"]) for row in rows if row["train/grad_norm/generator"]] == [0, 1, 2]
    norms = [float(row["train/grad_norm/discriminator"]) for row in rows if row["train/grad_norm/discriminator"]]
    assert len(norms) == 3 and all(math.isfinite(norm) for norm in norms)  # measured before clipping
    # The trainer's clip value reached the manual-optimization module, which clips after AMP unscales
    # (tests/gan/test_gan_phases.py checks the clipped gradient itself).
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["gradient_clip_val"] == 1.0
    assert {float(row["lr-Adam"]) for row in rows if row["lr-Adam"]} == {2e-4}
    assert any(row["lr-Adam-1"] for row in rows)
    assert "_target_: lightning_modules.gan.GAN" in (tmp_path / "config_tree.log").read_text()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_shows_its_metric_and_logs_lr_and_gradient_norms(tmp_path, experiment):
    cfg = compose_config([f"experiment={experiment}", "logger=csv"], tmp_path)
    callbacks = {type(callback) for callback in instantiate_all(cfg.callbacks)}
    assert {MonitoredMetricProgressBar, LearningRateMonitor, GradientNormMonitor} <= callbacks
    assert cfg.callbacks.model_checkpoint.monitor.startswith("val/")
    assert EarlyStopping not in callbacks, "early stopping is off by default"


def test_early_stopping_follows_the_checkpoint_metric_when_added(make_config):
    cfg = make_config("experiment=vae", "callbacks=[vae,early_stopping]")
    stopping = [c for c in instantiate_all(cfg.callbacks) if isinstance(c, EarlyStopping)]
    assert len(stopping) == 1 and stopping[0].monitor == "val/nelbo_nats" and stopping[0].mode == "min"


def test_make_help_says_what_max_steps_counts():
    help_text = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "trainer.max_steps=500 (training batches, GANs too)" in help_text
    assert "make clean" in help_text

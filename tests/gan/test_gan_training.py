"""The GAN spine's promises: start-up errors, NaN stops, exact resume, grids, precision, DDP."""

import hashlib
import os
import subprocess
import sys

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

import lightning_modules.gan as gan_module
from genlab.run import train
from lightning_modules.callbacks.image_grids import sample_grid
from lightning_modules.training.guards import NonFiniteLossError
from tests.helpers.config import ROOT, requires_mnist
from tests.helpers.gan import SHORT
from tests.helpers.trainer import assert_same_state, resumed_and_uninterrupted


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.optimizer_g.lr=-0.1", "model.optimizer_g: Invalid learning rate: -0.1"),
        ("model.generator.latent_dim=0", "latent_dim must be positive, got 0"),
        ("model.loss=wassersten", "Unknown loss 'wassersten'. Available:"),
        ("model.n_critic=0", "n_critic must be >= 1, got 0"),
    ],
)
def test_nonsense_hyperparameters_fail_at_start_up(make_config, override, message):
    cfg = make_config("experiment=dcgan", override)
    with pytest.raises(InstantiationException, match=message):
        instantiate(cfg.model)


def test_sample_is_in_unit_range_and_cgan_grid_has_one_row_per_class(make_config):
    module = instantiate(make_config("experiment=cgan", "model.generator.base_width=8").model)
    images = module.sample(6, generator=torch.Generator().manual_seed(0))
    assert images.shape == (6, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    grid = sample_grid(module, num_samples=30, seed=0)
    rows, columns = 10, 3  # 30 samples of 10 classes: 3 per class, one class per row
    assert grid.shape == (3, 2 + rows * 30, 2 + columns * 30)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@requires_mnist
def test_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path, make_config, monkeypatch):
    train(make_config("experiment=dcgan", *SHORT, "trainer.max_epochs=1"))
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = digest(last)

    discriminator_loss, _ = gan_module.adversarial_loss("non_saturating")
    monkeypatch.setattr(
        gan_module, "adversarial_loss", lambda name: (discriminator_loss, lambda f: f.mean() * torch.nan)
    )
    cfg = make_config("experiment=dcgan", *SHORT, "trainer.max_epochs=2", f"ckpt_path={last}")
    with pytest.raises(NonFiniteLossError, match=r"generator loss is nan at step \d+"):
        train(cfg)
    assert digest(last) == before


@requires_mnist
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, make_config):
    overrides = ("experiment=dcgan", *SHORT, "trainer.deterministic=true")
    expected, actual, unresumed = resumed_and_uninterrupted(make_config, tmp_path, *overrides)
    assert expected.keys() == actual.keys()
    assert_same_state(expected, actual)
    assert not torch.equal(unresumed["generator.net.0.weight"], actual["generator.net.0.weight"])


@requires_mnist
@pytest.mark.parametrize("loss", ["hinge", "least_squares", "minimax"])
def test_every_adversarial_loss_trains_under_bf16_mixed(make_config, loss):
    metrics = train(
        make_config(
            "experiment=dcgan", *SHORT, "trainer.max_epochs=1", "trainer.precision=bf16-mixed", f"model.loss={loss}"
        )
    )
    assert torch.isfinite(torch.tensor(metrics["train/g_loss"]))


@requires_mnist
def test_wgan_gp_with_spectral_norm_trains(make_config):
    metrics = train(
        make_config("experiment=wgan_gp", *SHORT, "trainer.max_epochs=1", "model.discriminator.spectral_norm=true")
    )
    assert metrics["train/gradient_penalty"] >= 0


def test_unknown_model_lists_the_available_ones():
    result = subprocess.run(
        ["make", "-s", "train", "MODEL=dcgna"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "Unknown model 'dcgna'. Available:" in result.stderr and "dcgan" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@requires_mnist
@pytest.mark.slow
def test_ddp_with_two_cpu_processes(tmp_path):
    overrides = [o for o in SHORT if not o.startswith("trainer.accelerator")]
    command = [
        sys.executable,
        "train.py",
        "experiment=dcgan",
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=1",
        "logger=csv",
        "callbacks.progress_bar=null",
        f"paths.log_dir={tmp_path}",
        *overrides,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(tmp_path.rglob("last.ckpt")), "no checkpoint written"


def test_missing_dataset_stops_the_cli_at_once_naming_the_path(tmp_path):
    command = [sys.executable, "train.py", "experiment=dcgan", "logger=csv", f"paths.log_dir={tmp_path}"]
    env = {**os.environ, "DATA_ROOT": str(tmp_path / "nowhere")}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1
    assert f"mnist not found under {tmp_path / 'nowhere'}/MNIST/raw" in result.stderr
    assert "Traceback" not in result.stderr

"""W&B goes offline by itself and never prompts; images reach every logger and the run folder."""

import pytest

from genlab.loggers import wandb_mode
from genlab.run import train
from tests.helpers.config import requires_mnist

SHORT = [
    "metrics=none",
    "callbacks.model_checkpoint.monitor=null",
    "callbacks.sample_grid.every_n_batches=2",
    "callbacks.sample_grid.num_samples=16",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=1",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "data.batch_size=16",
    "test=false",
]


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc


def test_mode_is_offline_without_credentials(no_credentials):
    assert wandb_mode()[0] == "offline"


def test_mode_is_offline_when_the_server_is_unreachable(no_credentials, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    assert wandb_mode() == ("offline", "http://127.0.0.1:9 is not reachable")


def test_an_explicit_mode_wins(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode()[0] == "disabled"


@requires_mnist
def test_wandb_run_without_credentials_goes_offline_and_says_how_to_sync(
    make_config, tmp_path, no_credentials, capsys, monkeypatch
):
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_config("experiment=dcgan", *SHORT)
    cfg.logger = make_config("experiment=dcgan", "logger=wandb").logger
    train(cfg)
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline W&B run folder"
    assert "wandb sync" in capsys.readouterr().out
    assert list((tmp_path / "csv").rglob("metrics.csv")), "the CSV logger must always be there"
    assert len(list((tmp_path / "images").glob("samples_step*.png"))) >= 2

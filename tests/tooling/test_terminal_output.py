"""What a run prints: the config tree, progress bars, evaluation table, one sync hint, no known noise."""

import io
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.image.inception import InceptionScore

from genlab.config_tree import print_config_tree
from genlab.evaluation.evaluate_checkpoint import metrics_table
from genlab.known_warnings import silence_known_warnings
from genlab.loggers import finish_loggers, wandb_logger
from lightning_modules.callbacks.progress_bars import LabelledProgressBar, MonitoredMetricProgressBar
from lightning_modules.metrics.feature_classifier import classifier_progress_label


def test_config_tree_is_printed_resolved_and_saved(make_config, tmp_path, capsys):
    cfg = make_config("experiment=dcgan")
    print_config_tree(cfg, tmp_path / "config_tree.log")
    printed, saved = capsys.readouterr().out, (tmp_path / "config_tree.log").read_text()
    for text in (printed, saved):
        assert "_target_: lightning_modules.gan.GAN" in text and "monitor: val/fid" in text
        assert "${" not in text, "interpolations must be shown resolved"
    assert saved.index("data") < saved.index("model") < saved.index("trainer") < saved.index("task_name")


class LogsAQuietMetric(L.LightningModule):
    """Logs `val/score` without prog_bar, as VAEs log val/nelbo_nats and GenerativeMetrics val/fid."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/score", 3.5)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit_quiet_module(tmp_path: Path, bar: L.Callback) -> L.Trainer:
    data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=[ModelCheckpoint(dirpath=tmp_path, monitor="val/score"), bar],
    )
    trainer.fit(LogsAQuietMetric(), data, data)
    return trainer


def test_progress_bar_shows_the_monitored_metric_beside_the_losses(tmp_path):
    bar = MonitoredMetricProgressBar()
    trainer = fit_quiet_module(tmp_path, bar)
    shown = bar.get_metrics(trainer, trainer.lightning_module)
    assert shown["val/score"] == 3.5 and "train/loss" in shown and "v_num" not in shown


def test_side_job_bar_is_labelled_with_the_cache_path(tmp_path):
    label = classifier_progress_label(tmp_path / "mnist_1x28x28.pt")
    assert "feature classifier" in label and str(tmp_path / "mnist_1x28x28.pt") in label
    bar = LabelledProgressBar(label)
    fit_quiet_module(tmp_path, bar)
    assert bar._get_train_description(0) == f"{label} (epoch 1/1)"


def test_known_harmless_warnings_are_silenced_in_code_and_others_still_show():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_known_warnings()
        InceptionScore(nn.Identity())
        warnings.warn("something a user should see", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something a user should see"]


def test_offline_wandb_run_prints_the_sync_hint_once(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    logger = wandb_logger(save_dir=str(tmp_path), project="genlab-test")
    logger.log_metrics({"train/loss": 1.0})
    finish_loggers([logger])
    output = "".join(capfd.readouterr())
    assert output.count("wandb sync") == 1, output


def test_evaluation_table_lists_every_scalar_and_leaves_histograms_to_the_json():
    metrics = {"fid": 12.3456, "mode_coverage": {"classes_covered": 9, "histogram": [0.1] * 10}}
    console = Console(file=io.StringIO(), width=100)
    console.print(metrics_table(metrics, title="run/last.ckpt"))
    table = console.file.getvalue()
    assert "run/last.ckpt" in table and "12.35" in table and "mode_coverage/classes_covered" in table
    assert "histogram" not in table

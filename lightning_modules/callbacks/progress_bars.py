"""Progress bars that say what a run is doing: the metric checkpoints follow, and labelled side jobs."""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar


class MonitoredMetricProgressBar(RichProgressBar):
    """Lightning's rich bar, plus the latest value of the metric the checkpoints follow (`val/fid`,
    `val/nelbo_nats`, ...) beside the losses, wherever and however the module or a callback logged it."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)  # the logger's version number: always 0 in genlab's one-run folders
        monitor = monitored_metric(trainer)
        if monitor is not None and monitor not in items and monitor in trainer.callback_metrics:
            items[monitor] = float(trainer.callback_metrics[monitor])
        return items


def monitored_metric(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    return callback.monitor if isinstance(callback, ModelCheckpoint) else None


class LabelledProgressBar(RichProgressBar):
    """A rich bar whose training line reads `label` instead of `Epoch N`, for jobs a run does on the side."""

    def __init__(self, label: str) -> None:
        super().__init__(leave=True)
        self.label = label

    def _get_train_description(self, current_epoch: int) -> str:
        epochs = f" (epoch {current_epoch + 1}/{self.trainer.max_epochs})" if self.trainer.max_epochs else ""
        return f"{self.label}{epochs}"

"""The run's progress bar: Lightning's rich bar plus the metric the checkpoints follow.

The bar of the feature classifier's side job lives with that job (`metrics.feature_classifier`).
"""

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

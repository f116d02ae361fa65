"""The best value of the monitored metric so far, the one the kept checkpoint has.

W&B's runs table, W&B sweeps and the local Optuna sweep rank runs by a single number per run. A
run's last validation value is not the value of the checkpoint it keeps, so this callback logs
`<monitor>_best` after every validation (as lightning-hydra-template does with `MinMetric`) and
declares `<monitor>` to W&B with `summary="min"` or `"max"`.
"""

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

from lightning_modules.callbacks.image_grids import logging_step

BEST_SUFFIX = "_best"


class BestMetric(Callback):
    """Logs `<monitor>_best` with the same rule `ModelCheckpoint(monitor, mode)` keeps checkpoints by.

    Non-finite values never become the best. The best is in the checkpoint, so a resumed run goes
    on from it. `monitor=None` switches the callback off.
    """

    def __init__(self, monitor: str | None, mode: str = "min") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max' (as in callbacks.model_checkpoint.mode), got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None

    @property
    def best_name(self) -> str:
        return f"{self.monitor}{BEST_SUFFIX}"

    def improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return self.best is None or (value < self.best if self.mode == "min" else value > self.best)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.monitor is None:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger) and trainer.is_global_zero:
                # A metric's own definition replaces the "*" one WandbLogger makes, so repeat its x-axis.
                logger.experiment.define_metric(
                    self.monitor, summary=self.mode, step_metric="trainer/global_step", step_sync=True
                )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs after the epoch's metrics reached callback_metrics and before ModelCheckpoint, which
        # Lightning always calls last, saves: a checkpoint saved now carries the updated best.
        if self.monitor is None or trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if self.improves(value):
            self.best = value
        if self.best is None:
            return
        # callback_metrics is what train() returns, so a local sweep's optimized_metric can name it.
        trainer.callback_metrics[self.best_name] = torch.tensor(self.best)
        for logger in trainer.loggers:
            logger.log_metrics({self.best_name: self.best}, step=logging_step(trainer))

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict["best"]

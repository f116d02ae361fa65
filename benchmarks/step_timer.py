"""Timing Lightning training steps for the benchmarks: wall and CPU seconds after the warm-up batches,
and Trainers that do nothing but train (and time)."""

import os
import time

import lightning as L
import torch


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work, so a clock read after it counts that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clocks() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process: user + system)."""
    times = os.times()
    return time.perf_counter(), times.user + times.system


class StepTimer(L.Callback):
    """Wall and CPU time from the end of the `warmup` untimed batches to the end of the last batch."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = (0.0, 0.0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        synchronize(pl_module.device)
        now = clocks()
        if batch_idx == self.warmup - 1:
            self.start = now
        self.end = now

    @property
    def wall_seconds(self) -> float:
        return self.end[0] - self.start[0]

    @property
    def cpu_seconds(self) -> float:
        return self.end[1] - self.start[1]


def training_only_trainer(**kwargs) -> L.Trainer:
    """A Trainer that only trains: no validation, logger, checkpoints, progress bar or model summary;
    `kwargs` add to or override these settings."""
    settings = dict(
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**(settings | kwargs))


def timing_trainer(timer: StepTimer, **kwargs) -> L.Trainer:
    """One epoch of `training_only_trainer`, timed by `timer`; `kwargs` add to or override its settings."""
    return training_only_trainer(**(dict(max_epochs=1, callbacks=[timer]) | kwargs))

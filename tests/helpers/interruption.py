"""A callback that signals its own process at a chosen batch: a deterministic SIGTERM or Ctrl-C in tests."""

import os
import signal

import lightning as L
from lightning.pytorch.callbacks import Callback


class SignalAtBatch(Callback):
    """Sends `signum` to this process at the end of global batch `batch` (counted over epochs from 0)."""

    def __init__(self, batch: int, signum: int = signal.SIGTERM) -> None:
        self.batch, self.signum = batch, signum

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        batch_index = trainer.current_epoch * trainer.num_training_batches + args[-1]
        if batch_index == self.batch:
            os.kill(os.getpid(), self.signum)

"""Stop on SIGTERM or Ctrl-C without losing work: finish the batch, save a checkpoint, say how to resume.

Lightning already turns SIGTERM (what SLURM, Kubernetes and `timeout` send) into a `SIGTERMException`
at the end of the batch in progress, but exits with code 0 and saves nothing. `InterruptionCheckpoint`
saves that step to `last.ckpt`, makes the first Ctrl-C take the same path (a second one stops at once,
without a checkpoint) and leaves `train.py` a `RunInterruptedError` that prints the resume command and
exits 143 or 130, as a shell would for a process killed by those signals.
"""

import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

EXIT_CODES = {"SIGTERM": 128 + signal.SIGTERM, "SIGINT": 128 + signal.SIGINT}


class RunInterruptedError(Exception):
    """Training stopped by a signal; the message says what was saved and how to resume."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class InterruptionCheckpoint(Callback):
    """On SIGTERM or a first Ctrl-C, end the batch in progress and save it to `<dirpath>/last.ckpt`.

    The checkpoint is taken where Lightning's loop stops for SIGTERM, after the batch's optimizer
    steps and progress counters, so resuming from it continues exactly (the train loader resumes
    mid-epoch too, see `datamodules.base`). A NaN loss or any other error saves nothing: the
    last good checkpoint stays.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.checkpoint_path = Path(dirpath) / "last.ckpt"
        self.signal_name: str | None = None  # "SIGTERM" or "SIGINT" once one arrived
        self.saved = False
        self.wandb_run_id: str | None = None
        self.position = ""

    # Lightning registers its SIGTERM handler just before the loops run and restores every handler
    # when they end, so Ctrl-C is taken over at the same points: the loops' own start hooks.
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._handle_ctrl_c(trainer)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._handle_ctrl_c(trainer)

    def _handle_ctrl_c(self, trainer: L.Trainer) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_ctrl_c(signum: int, frame: Any) -> None:
            if self.signal_name is not None or not callable(signal.getsignal(signal.SIGTERM)):
                raise KeyboardInterrupt
            self.signal_name = "SIGINT"
            print(
                "\nCtrl-C: stopping after this batch to save a checkpoint (Ctrl-C again stops at once, without one)",
                file=sys.stderr,
                flush=True,
            )
            signal.raise_signal(signal.SIGTERM)  # Lightning's handler: stop at the end of this batch

        signal.signal(signal.SIGINT, on_ctrl_c)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            self.signal_name = self.signal_name or "SIGTERM"
        if self.signal_name is None:
            return
        self.position = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        self.wandb_run_id = next(
            (str(logger.version) for logger in trainer.loggers if isinstance(logger, WandbLogger)), None
        )
        # Before the first step (a signal while the metrics classifier trains, say) there is nothing to keep.
        if isinstance(exception, SIGTERMException) and trainer.state.fn == TrainerFn.FITTING and trainer.global_step:
            trainer.save_checkpoint(self.checkpoint_path)
            self.saved = True

    def error(self, overrides: list[str]) -> RunInterruptedError | None:
        """The `RunInterruptedError` for a run this callback saw interrupted (None if it was not): what was
        saved, and the command that resumes it from `overrides` (the run's command-line overrides)."""
        if self.signal_name is None:
            return None
        how = "by SIGTERM" if self.signal_name == "SIGTERM" else "by Ctrl-C"
        if self.saved:
            message = f"Stopped {how} at {self.position}; saved {self.checkpoint_path}."
        elif self.checkpoint_path.is_file():
            message = (
                f"Stopped {how} at {self.position} without saving it; the last checkpoint is {self.checkpoint_path}."
            )
        else:
            return RunInterruptedError(
                f"Stopped {how} before any checkpoint was written; nothing to resume.", self.exit_code
            )
        return RunInterruptedError(f"{message} Resume with:\n  {self.resume_command(overrides)}", self.exit_code)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.signal_name or "SIGTERM"]

    def resume_command(self, overrides: list[str]) -> str:
        kept = [
            o
            for o in overrides
            if not o.lstrip("+~").startswith(("ckpt_path=", "logger.wandb.id=", "logger.wandb.resume="))
        ]
        resume = [f"ckpt_path={self.checkpoint_path.resolve()}"]
        if self.wandb_run_id:
            resume += [f"logger.wandb.id={self.wandb_run_id}", "logger.wandb.resume=allow"]
        return shlex.join(["python", "train.py", *kept, *resume])

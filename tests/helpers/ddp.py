"""DDP with 2 CPU processes (gloo) for tests.

A test runs a script with `run_script_on_two_ranks`; the script fits with `two_rank_trainer`, and
Lightning relaunches it once per rank. Each rank saves what it ended with (`SaveEachRank`), and the
test compares the ranks' files.
"""

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import TensorDataset

ROOT = Path(__file__).resolve().parents[2]


class SaveEachRank(Callback):
    """Saves `<prefix>rank<r>.pt`: the weights at the start and end of training and the last logged metrics."""

    def __init__(self, out_dir: Path, prefix: str = "") -> None:
        self.out_dir, self.prefix = out_dir, prefix
        self.initial_weights: dict[str, torch.Tensor] = {}

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.initial_weights = cpu_state(module)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        saved = {
            "initial_weights": self.initial_weights,
            "weights": cpu_state(module),
            "metrics": {name: float(value) for name, value in trainer.callback_metrics.items()},
        }
        torch.save(saved, self.out_dir / f"{self.prefix}rank{trainer.global_rank}.pt")


def cpu_state(module: L.LightningModule) -> dict[str, torch.Tensor]:
    return {name: value.detach().cpu().clone() for name, value in module.state_dict().items()}


def two_rank_trainer(
    out_dir: Path, callbacks: list[Callback], strategy: DDPStrategy | None = None, **settings
) -> L.Trainer:
    """A quiet Trainer on 2 CPU processes, no logger, checkpoints or validation unless `settings` say so.

    `strategy` defaults to DDP over gloo with `find_unused_parameters` (a GAN step leaves one player idle).
    """
    defaults = {
        "max_epochs": 1,
        "limit_val_batches": 0,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=strategy or DDPStrategy(process_group_backend="gloo", find_unused_parameters=True),
        default_root_dir=out_dir,
        callbacks=callbacks,
        **{**defaults, **settings},
    )


def black_and_white_images(n: int, size: int) -> TensorDataset:
    """n single-channel images, black at even indices and white at odd ones, with label 0.

    Lightning's distributed sampler deals index i to rank i % 2, so rank 0 trains on black images
    only and rank 1 on white ones: gradients left unsynchronised would differ between the ranks.
    """
    white = (torch.arange(n) % 2).float().view(n, 1, 1, 1)
    return TensorDataset(white.expand(n, 1, size, size).clone(), torch.zeros(n, dtype=torch.long))


def run_script_on_two_ranks(script: Path, out_dir: Path, timeout: int = 300) -> None:
    """Run `python script out_dir` (which launches its second rank itself); fail with its stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(script), str(out_dir)], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]


def load_ranks(out_dir: Path, prefix: str = "") -> tuple[dict, dict]:
    """What ranks 0 and 1 saved with `SaveEachRank(out_dir, prefix)`."""
    return tuple(torch.load(out_dir / f"{prefix}rank{rank}.pt", weights_only=True) for rank in (0, 1))

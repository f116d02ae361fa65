"""Trainers for tests: a quiet Lightning Trainer (CPU, no logger, checkpoints, progress bar or
sanity check), and uninterrupted-versus-resumed `train.py` runs for exact-resume tests."""

from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig
from torch import Tensor

from genlab.run import train


def quiet_trainer(**kwargs) -> L.Trainer:
    """A `L.Trainer` with test defaults; `kwargs` add to or override them."""
    defaults = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return L.Trainer(**(defaults | kwargs))


def resumed_and_uninterrupted(
    make_config: Callable[..., DictConfig],
    tmp_path: Path,
    *overrides: str,
    edit: Callable[[DictConfig], None] = lambda cfg: None,
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """State dicts of `train.py` runs of the composed config (`edit` changes it further): two epochs
    uninterrupted, two epochs resumed from a one-epoch run's last.ckpt, and that one-epoch run's."""

    def run(folder: str, *more: str) -> dict[str, Tensor]:
        cfg = make_config(*overrides, *more)
        edit(cfg)
        cfg.paths.output_dir = str(tmp_path / folder)
        train(cfg)
        return torch.load(tmp_path / folder / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]

    uninterrupted = run("straight", "trainer.max_epochs=2")
    first_epoch = run("first", "trainer.max_epochs=1")
    resumed = run("resumed", "trainer.max_epochs=2", f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}")
    return uninterrupted, resumed, first_epoch


def assert_same_state(expected: dict[str, Tensor], actual: dict[str, Tensor]) -> None:
    """Every tensor of `expected` equals `actual`'s of the same name, bit for bit."""
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{name} differs after resume"

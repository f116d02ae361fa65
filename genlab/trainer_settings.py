"""Trainer settings that mean the same for every family, manual-optimization GANs included.

GANs and CycleGAN step two optimizers per batch by hand. Lightning then counts `global_step` twice
per batch (so `trainer.max_steps` would stop after half the batches asked for) and refuses
trainer-level gradient clipping and accumulation. Here `trainer.max_steps` always counts batches,
and `trainer.gradient_clip_val` goes to the module's own clipping.
"""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf


class TrainerSettingError(ValueError):
    """A trainer setting this model cannot honour; the message names the setting and the fix."""


class StopAfterBatches(Callback):
    """Stops training after `max_batches` training batches (counted across epochs and resumes)."""

    def __init__(self, max_batches: int) -> None:
        self.max_batches = max_batches

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.fit_loop.epoch_loop.total_batch_idx + 1 >= self.max_batches:
            trainer.should_stop = True


def manual_optimization_settings(
    trainer_cfg: DictConfig, module: L.LightningModule
) -> tuple[DictConfig, list[Callback]]:
    """(trainer config to instantiate, extra callbacks): unchanged for automatic optimization."""
    if module.automatic_optimization:
        return trainer_cfg, []
    # A copy: the run's own config (logged, stored in checkpoints) keeps what the user typed.
    trainer_cfg = OmegaConf.create(OmegaConf.to_container(trainer_cfg, resolve=True))
    name = type(module).__name__
    if trainer_cfg.get("accumulate_grad_batches", 1) != 1:
        raise TrainerSettingError(
            f"trainer.accumulate_grad_batches={trainer_cfg.accumulate_grad_batches}: {name} steps its optimizers "
            "by hand, which Lightning cannot accumulate; raise data.batch_size instead."
        )
    callbacks: list[Callback] = []
    clip = trainer_cfg.get("gradient_clip_val")
    if clip:
        if "gradient_clip_val" not in module.hparams:
            raise TrainerSettingError(f"trainer.gradient_clip_val: {name} has no gradient clipping of its own.")
        if trainer_cfg.get("gradient_clip_algorithm") not in (None, "norm"):
            raise TrainerSettingError(f"trainer.gradient_clip_algorithm: {name} clips by norm only; remove it.")
        module.hparams.gradient_clip_val = clip  # the trainer's value wins, as it does for the flows
        trainer_cfg.gradient_clip_val = None
        trainer_cfg.gradient_clip_algorithm = None
    max_steps = trainer_cfg.get("max_steps", -1)
    if max_steps is not None and max_steps > 0:  # 0 optimizer steps is already 0 batches
        callbacks.append(StopAfterBatches(max_steps))
        trainer_cfg.max_steps = -1
    return trainer_cfg, callbacks

"""Gradient norms per network (generator, discriminator, encoder, flow, ...), every N batches.

The first thing to look at when a GAN diverges: one player's gradients exploding or vanishing.
"""

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import grad_norm
from torch import nn


class GradientNormMonitor(Callback):
    """Logs `train/grad_norm/<network>`: the total `norm_type`-norm of the gradients of each direct
    child network of the module that the stepping optimizer updates.

    It runs before the first step of each optimizer in every window of N batches, so a player that
    does not step every batch (WGAN-GP's generator steps every n_critic batches) is logged too.
    Norms are measured before any clipping, in every family: Lightning runs this hook before the
    module's own `on_before_optimizer_step`, where the GANs and CycleGAN clip.
    """

    def __init__(self, every_n_batches: int = 50, norm_type: float = 2.0) -> None:
        if every_n_batches <= 0:
            raise ValueError(f"callbacks.gradient_norms.every_n_batches must be positive, got {every_n_batches}")
        self.every_n_batches, self.norm_type = every_n_batches, float(norm_type)
        self.logged_window: dict[int, int] = {}  # id(optimizer) -> the last window it was logged in

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        window = trainer.fit_loop.epoch_loop.total_batch_idx // self.every_n_batches
        if self.logged_window.get(id(optimizer)) == window:
            return
        self.logged_window[id(optimizer)] = window
        norms = {}
        for name, network in networks_updated_by(pl_module, optimizer):
            total = grad_norm(network, self.norm_type).get(f"grad_{self.norm_type}_norm_total")
            if total is not None:
                norms[f"train/grad_norm/{name}"] = float(total)
        # Straight to the loggers, as LearningRateMonitor does: `self.log` would repeat the last
        # value at every later step, showing norms that were never measured there.
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in trainer.loggers:
            logger.log_metrics(norms, step=step)


def networks_updated_by(module: nn.Module, optimizer: torch.optim.Optimizer) -> list[tuple[str, nn.Module]]:
    """The module's direct children with at least one parameter in `optimizer`."""
    stepped = {id(parameter) for group in optimizer.param_groups for parameter in group["params"]}
    return [
        (name, child)
        for name, child in module.named_children()
        if any(id(parameter) in stepped for parameter in child.parameters())
    ]

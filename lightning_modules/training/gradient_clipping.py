"""Gradient clipping for automatic optimization that falls back to the module's own default.

Flows and diffusion models clip by norm by default (Glow, Ho et al. 2020: 1.0); the trainer's
`gradient_clip_val`, when a user sets it, wins over `hparams.gradient_clip_val`.
"""

import torch


class ClipWithModuleDefault:
    """LightningModule mixin: clip with the trainer's value if set, else `self.hparams.gradient_clip_val`."""

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        value = gradient_clip_val if gradient_clip_val is not None else self.hparams.gradient_clip_val
        if value:
            self.clip_gradients(optimizer, value, gradient_clip_algorithm or "norm")

"""Generator EMA with a half-life counted in images, as StyleGAN2(-ADA) averages its generator.

beta = 0.5 ** (batch / half_life_images): the average forgets half of what it knew every
`half_life_kimg` thousand images, whatever the batch size. With ramp-up, the half-life is at most
`rampup` times the images seen so far, so short runs' averages follow the network instead of
staying near its initialisation.
"""

import torch
from torch import nn


def check_half_life(half_life_kimg: float, rampup: float | None) -> None:
    """Refuse a half-life or ramp-up that is not positive, naming the setting."""
    if half_life_kimg <= 0:
        raise ValueError(f"ema_kimg must be positive, got {half_life_kimg}")
    if rampup is not None and rampup <= 0:
        raise ValueError(f"ema_rampup must be positive or null, got {rampup}")


def half_life_ema_beta(batch_images: int, images_seen: int, half_life_kimg: float, rampup: float | None) -> float:
    """The decay of one EMA update over `batch_images` images (all processes together)."""
    check_half_life(half_life_kimg, rampup)
    half_life = half_life_kimg * 1000
    if rampup is not None:
        half_life = min(half_life, images_seen * rampup)
    return 0.5 ** (batch_images / max(half_life, 1e-8))


@torch.no_grad()
def ema_update(averaged: nn.Module, current: nn.Module, beta: float) -> None:
    """averaged <- beta averaged + (1 - beta) current for parameters; buffers (tracked means) are copied."""
    for average, parameter in zip(averaged.parameters(), current.parameters(), strict=True):
        average.lerp_(parameter.detach(), 1 - beta)
    for average, buffer in zip(averaged.buffers(), current.buffers(), strict=True):
        average.copy_(buffer)

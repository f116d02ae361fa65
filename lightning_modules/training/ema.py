"""Exponential moving average of a network's weights, for sampling and metrics."""

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


class WarmupEMA:
    """EMA update with decay min(decay, (1 + n) / (10 + n)) after n updates.

    The warm-up (as in TensorFlow's ExponentialMovingAverage with num_updates) lets short runs'
    averages follow the network instead of staying near its initialisation.
    """

    def __init__(self, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = decay

    def __call__(self, averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        decay = min(self.decay, (1.0 + float(num_averaged)) / (10.0 + float(num_averaged)))
        return decay * averaged + (1.0 - decay) * current


def ema_copy(network: nn.Module, decay: float) -> AveragedModel:
    """An `AveragedModel` tracking `network` with warm-up EMA; its weights never receive gradients."""
    averaged = AveragedModel(network, avg_fn=WarmupEMA(decay), use_buffers=True)
    averaged.requires_grad_(False)
    return averaged

"""Checks on optimizer factories that arrive from config (`_partial_: true`)."""

from collections.abc import Callable

import torch
from torch.optim import Optimizer

OptimizerFactory = Callable[..., Optimizer]


def checked_optimizer_factory(name: str, factory: OptimizerFactory) -> OptimizerFactory:
    """Build the optimizer once on a dummy parameter so bad settings fail at start-up, naming the key."""
    try:
        factory([torch.nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as error:
        raise ValueError(f"model.{name}: {error}") from error
    return factory

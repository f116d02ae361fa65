"""The schedule functions of training/schedules.py: warm-ups and decays as pure functions."""

import pytest
import torch

from lightning_modules.training.ema import WarmupEMA
from lightning_modules.training.schedules import ema_warmup_decay, linear_warmup_factor


def test_linear_warmup_reaches_the_full_rate_after_warmup_steps() -> None:
    assert [linear_warmup_factor(step, 4) for step in (0, 1, 3, 10)] == [0.25, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="warmup_steps must be positive"):
        linear_warmup_factor(0, 0)


def test_ema_decay_warms_up_to_the_configured_decay() -> None:
    assert ema_warmup_decay(0.999, 0) == pytest.approx(0.1)
    assert ema_warmup_decay(0.999, 80) == pytest.approx(81 / 90)
    assert ema_warmup_decay(0.5, 80) == 0.5
    averaged = WarmupEMA(0.999)(torch.zeros(()), torch.ones(()), torch.tensor(0))
    assert averaged.item() == pytest.approx(0.9)  # decay 0.1 on the first update

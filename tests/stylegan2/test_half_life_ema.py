"""Generator EMA with a half-life in images and ramp-up."""

import pytest
import torch
from torch import nn

from lightning_modules.training.half_life_ema import ema_update, half_life_ema_beta


def test_half_life_is_counted_in_images_whatever_the_batch():
    # After half_life_kimg thousand images the old average keeps half its weight, for any batch size.
    for batch in (8, 64):
        assert half_life_ema_beta(batch, 10**9, 10, None) ** (10_000 / batch) == pytest.approx(0.5)


def test_ramp_up_shortens_the_half_life_early_in_training():
    assert half_life_ema_beta(32, 1000, 10, 0.05) == pytest.approx(0.5 ** (32 / 50))  # 0.05 x 1000 images
    assert half_life_ema_beta(32, 10**7, 10, 0.05) == pytest.approx(0.5 ** (32 / 10_000))
    assert half_life_ema_beta(32, 0, 10, 0.05) == pytest.approx(0.0)  # the first update copies
    with pytest.raises(ValueError, match="ema_kimg must be positive, got 0"):
        half_life_ema_beta(32, 0, 0, None)


def test_update_averages_parameters_and_copies_buffers():
    averaged, current = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        averaged.weight.fill_(0.0)
        current.weight.fill_(1.0)
        current.running_mean.fill_(3.0)
    ema_update(averaged, current, beta=0.75)
    torch.testing.assert_close(averaged.weight, torch.full((2,), 0.25))
    torch.testing.assert_close(averaged.running_mean, torch.full((2,), 3.0))

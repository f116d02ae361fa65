"""CycleGAN loss terms and learning-rate schedule against hand computations."""

import functools

import pytest
import torch
from torch import nn

from lightning_modules.objectives.cycle import cycle_consistency_loss, identity_loss
from lightning_modules.training.schedules import linear_decay_factor


def test_cycle_loss_is_mean_absolute_error_by_hand() -> None:
    real = torch.tensor([[0.0, 1.0], [-1.0, 0.5]])
    reconstructed = torch.tensor([[0.5, 1.0], [0.0, -0.5]])
    # |0.5| + 0 + |1| + |1| over 4 pixels
    assert cycle_consistency_loss(real, reconstructed).item() == pytest.approx(2.5 / 4)
    assert identity_loss(real, reconstructed).item() == pytest.approx(2.5 / 4)


def test_identity_generators_give_exactly_zero_cycle_loss() -> None:
    generator_ab, generator_ba = nn.Identity(), nn.Identity()
    real_a = torch.rand(2, 3, 8, 8) * 2 - 1
    assert cycle_consistency_loss(real_a, generator_ba(generator_ab(real_a))).item() == 0.0
    assert identity_loss(real_a, generator_ba(real_a)).item() == 0.0


@pytest.mark.parametrize(
    ("epoch", "factor"),
    [(0, 1.0), (99, 1.0), (100, 1 - 1 / 101), (150, 1 - 51 / 101), (199, 1 / 101), (200, 0.0)],
)
def test_linear_decay_factor_paper_schedule(epoch: int, factor: float) -> None:
    assert linear_decay_factor(epoch, n_epochs=100, n_epochs_decay=100) == pytest.approx(factor)


def test_schedule_drives_lambda_lr_per_epoch() -> None:
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=2e-4, betas=(0.5, 0.999))
    factor = functools.partial(linear_decay_factor, n_epochs=3, n_epochs_decay=3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([2e-4, 2e-4, 2e-4, 1.5e-4, 1e-4, 0.5e-4])
    assert optimizer.param_groups[0]["lr"] == 0.0


def test_schedule_rejects_negative_lengths() -> None:
    with pytest.raises(ValueError, match="n_epochs and n_epochs_decay must be >= 0, got -1 and 5"):
        linear_decay_factor(0, n_epochs=-1, n_epochs_decay=5)

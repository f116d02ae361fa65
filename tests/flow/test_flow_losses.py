"""bits/dim: hand computations, exactly 8.0 for a uniform density, NaNs propagate."""

import math

import pytest
import torch
from torch import nn

from lightning_modules.networks.flow_layers import LogitTransform, dequantize
from lightning_modules.objectives.bits_per_dim import bits_per_dim, mean_bits_per_dim


class UniformThroughLogit(nn.Module):
    """A flow whose density is exactly uniform on [0, 1)^D, built through the logit transform.

    If u is uniform, y = logit(alpha + (1 - 2 alpha) u) has density sigmoid'(y) / (1 - 2 alpha),
    so with that base density log p(u) = log base(y) + logdet must be 0: any error in the logit
    log-det (a dropped log(1 - 2 alpha), a wrong sign) shows up as bits/dim != 8.
    """

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.logit = LogitTransform(alpha)

    def log_prob(self, u: torch.Tensor) -> torch.Tensor:
        y, logdet = self.logit(u)
        base = nn.functional.logsigmoid(y) + nn.functional.logsigmoid(-y)
        base = base - math.log(1 - 2 * self.logit.alpha)
        return base.flatten(1).sum(1) + logdet


class UniformThroughNormalQuantile(nn.Module):
    """Uniform on [0, 1)^D as the flow z = Phi^{-1}(u) with a standard normal prior."""

    def log_prob(self, u: torch.Tensor) -> torch.Tensor:
        z = torch.special.ndtri(u)
        log_normal = -0.5 * (z * z + math.log(2 * math.pi))
        logdet = -log_normal  # d Phi^{-1}(u) / du = 1 / phi(z)
        return (log_normal + logdet).flatten(1).sum(1)


@pytest.mark.parametrize(
    "model", [UniformThroughLogit(0.05), UniformThroughLogit(1e-6), UniformThroughNormalQuantile()]
)
def test_uniform_density_scores_exactly_8_bits_per_dim(model):
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.float64) / 255
    u = dequantize(x, generator=torch.Generator().manual_seed(0))
    bits = bits_per_dim(model.log_prob(u), num_dims=3 * 8 * 8)
    torch.testing.assert_close(bits, torch.full_like(bits, 8.0), atol=1e-10, rtol=0)


def test_bits_per_dim_hand_computation():
    # log p = -3 D ln 2 nats means 3 bits per dimension on [0, 1), plus 8 for the 8-bit grid
    num_dims = 28 * 28 * 1
    log_prob = torch.tensor([-3 * num_dims * math.log(2), 0.0])
    torch.testing.assert_close(bits_per_dim(log_prob, num_dims), torch.tensor([11.0, 8.0]))
    five_bit = bits_per_dim(log_prob, num_dims, num_bits=5)
    torch.testing.assert_close(five_bit, torch.tensor([8.0, 5.0]))


def test_bits_per_dim_divides_by_all_dimensions_not_pixels():
    log_prob = torch.tensor([-3 * 32 * 32 * math.log(2)])
    assert bits_per_dim(log_prob, 3 * 32 * 32).item() == pytest.approx(9.0)


def test_nan_is_never_dropped_from_the_mean():
    log_prob = torch.tensor([-1000.0, float("nan"), -1200.0])
    assert torch.isnan(mean_bits_per_dim(log_prob, 784))


def test_num_dims_must_be_positive():
    with pytest.raises(ValueError, match="num_dims must be positive, got 0"):
        bits_per_dim(torch.zeros(1), 0)

"""A toy dataset with known answers: pixels i.i.d. N(mean, std^2) in [-1, 1], and the exact
denoiser and velocity field for it, so likelihood estimators can be checked against the truth."""

import torch
from torch import Tensor

from lightning_modules.objectives.diffusion import discretized_gaussian_log_likelihood
from lightning_modules.objectives.diffusion_schedules import DiffusionSchedule, noise_level

MEAN, STD = 0.1, 0.3
SHAPE = (1, 2, 2)  # four pixels per image


def gaussian_images(n: int, seed: int, quantized: bool = True) -> Tensor:
    """n images of N(MEAN, STD^2) pixels; snapped to the 8-bit grid on [-1, 1] when `quantized`."""
    x = MEAN + STD * torch.randn(n, *SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if not quantized:
        return x
    return (((x.clamp(-1, 1) + 1) / 2 * 255).round() / 255 * 2 - 1).double()


def exact_log_mass(x0: Tensor) -> Tensor:
    """log P(x_0) per image of the Gaussian integrated over each pixel's 8-bit bin."""
    return discretized_gaussian_log_likelihood(x0, torch.full_like(x0, MEAN), torch.full_like(x0, STD**2))


def exact_log_density(x: Tensor) -> Tensor:
    """log N(x; MEAN, STD^2 I) per image."""
    return torch.distributions.Normal(MEAN, STD).log_prob(x).flatten(1).sum(dim=1)


def oracle_predict(schedule: DiffusionSchedule):
    """(x_t, steps) -> (E[x_0 | x_t], E[eps | x_t]) for the Gaussian data, in closed form."""

    def predict(xt: Tensor, steps: Tensor) -> tuple[Tensor, Tensor]:
        a, b = noise_level(schedule, steps, xt)
        marginal_variance = a**2 * STD**2 + b**2
        centred = xt - a * MEAN
        return MEAN + a * STD**2 / marginal_variance * centred, b / marginal_variance * centred

    return predict


def oracle_velocity(x: Tensor, t: Tensor) -> Tensor:
    """E[x_1 - x_0 | x_t = x] on the path x_t = t x_1 + (1 - t) x_0, x_0 ~ N(0, I)."""
    t = t.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)
    marginal_variance = t**2 * STD**2 + (1 - t) ** 2
    centred = x - t * MEAN
    return MEAN + (t * STD**2 - (1 - t)) / marginal_variance * centred

"""Samplers of a trained diffusion model: ancestral DDPM (Ho et al. 2020, algorithm 2) and DDIM
(Song et al. 2021, eq. 12) with any number of steps and any eta, plus DDIM's deterministic inversion.

Each is a pure function over `predict(x_t, steps) -> (x_0, epsilon)`, the model's denoised image
and noise at x_t; `start` is x_T (noise) and `generator` draws the per-step noise on the CPU,
so a seeded call gives the same images on every device. `on_step(index, x)` sees every state,
for pictures of the denoising process.
"""

from collections.abc import Callable

import torch
from torch import Tensor

from lightning_modules.objectives.diffusion import posterior_mean
from lightning_modules.objectives.diffusion_schedules import (
    DiffusionSchedule,
    NoiseLevel,
    at_steps,
    clean_level,
    noise_level,
)
from lightning_modules.samplers.choices import check_steps

Predict = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
OnStep = Callable[[int, Tensor], None] | None


def step_noise(like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(like.shape, generator=generator).to(like.device, like.dtype)


def clipped(x0: Tensor, epsilon: Tensor, xt: Tensor, level: NoiseLevel, clip: bool) -> tuple[Tensor, Tensor]:
    """x_0 clamped to the data range [-1, 1] and the epsilon consistent with it at x_t."""
    if not clip:
        return x0, epsilon
    x0 = x0.clamp(-1, 1)
    return x0, (xt - level.signal * x0) / level.noise


def ddpm_sample(
    predict: Predict,
    start: Tensor,
    schedule: DiffusionSchedule,
    variances: Tensor,
    generator: torch.Generator | None = None,
    clip: bool = True,
    on_step: OnStep = None,
) -> Tensor:
    """x_{t-1} = mu~(x_0_hat, x_t) + sigma_t z for t = T-1, ..., 0, no noise at the last step."""
    x = start
    for index, step in enumerate(reversed(range(schedule.num_steps))):
        steps = torch.full((len(x),), step, dtype=torch.long)
        x0, _ = predict(x, steps)
        x0 = x0.clamp(-1, 1) if clip else x0
        mean = posterior_mean(x0, x, steps, schedule)
        x = mean + at_steps(variances, steps, x).sqrt() * step_noise(x, generator) if step > 0 else mean
        if on_step is not None:
            on_step(index, x)
    return x


def ddim_timesteps(num_train_steps: int, num_steps: int) -> list[int]:
    """num_steps evenly spaced steps from T-1 down to 0 (distinct whenever num_steps <= T)."""
    check_steps(num_steps, num_train_steps)
    return torch.linspace(num_train_steps - 1, 0, num_steps, dtype=torch.float64).round().long().tolist()


def ddim_update(x0: Tensor, epsilon: Tensor, to: NoiseLevel, sigma: Tensor, noise: Tensor | None) -> Tensor:
    """x_{t'} = sqrt(alpha_bar_t') x_0 + sqrt(1 - alpha_bar_t' - sigma^2) eps + sigma z (Song et al. 2021, eq. 12)."""
    x = to.signal * x0 + (to.noise**2 - sigma**2).clamp(min=0).sqrt() * epsilon
    return x + sigma * noise if noise is not None else x


def ddim_sigma(schedule: DiffusionSchedule, step: int, to_step: int, eta: float, like: Tensor) -> Tensor:
    """eta sqrt((1 - alpha_bar_t') / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_t') (Song et al. 2021, eq. 16),
    in float64 (the first factor is a ratio of small numbers near t = 0)."""
    one_minus = schedule.one_minus_alpha_bar
    one_minus_to = one_minus[to_step] if to_step >= 0 else one_minus.new_zeros(())
    alpha_bar_to = schedule.alpha_bar[to_step] if to_step >= 0 else one_minus.new_ones(())
    variance = one_minus_to / one_minus[step] * (1 - schedule.alpha_bar[step] / alpha_bar_to)
    return (eta * variance.clamp(min=0).sqrt()).to(like.device, like.dtype)


def ddim_sample(
    predict: Predict,
    start: Tensor,
    schedule: DiffusionSchedule,
    num_steps: int,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    clip: bool = True,
    on_step: OnStep = None,
) -> Tensor:
    """DDIM from x_T in `num_steps` steps; eta = 0 is deterministic, eta = 1 is ancestral sampling
    on the sub-sequence (sigma_t of Song et al. 2021, eq. 16)."""
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0: deterministic DDIM, 1: DDPM-like), got {eta}")
    sequence = ddim_timesteps(schedule.num_steps, num_steps)
    x = start
    for index, step in enumerate(sequence):
        to_step = sequence[index + 1] if index + 1 < len(sequence) else -1
        steps = torch.full((len(x),), step, dtype=torch.long)
        x0, epsilon = clipped(*predict(x, steps), x, noise_level(schedule, steps, x), clip)
        to = noise_level(schedule, torch.full_like(steps, to_step), x) if to_step >= 0 else clean_level(x)
        noise = step_noise(x, generator) if eta > 0 else None
        x = ddim_update(x0, epsilon, to, ddim_sigma(schedule, step, to_step, eta, x), noise)
        if on_step is not None:
            on_step(index, x)
    return x


def ddim_invert(predict: Predict, x0: Tensor, schedule: DiffusionSchedule, num_steps: int) -> Tensor:
    """Run deterministic DDIM backwards, image -> x_T, on the steps `ddim_sample` would use.

    Each step reuses the noise predicted at the state it leaves (at the image itself, the first
    step's prediction), so inversion is exact only as the step size goes to zero (first order).
    """
    sequence = list(reversed(ddim_timesteps(schedule.num_steps, num_steps)))
    x, level = x0, clean_level(x0)
    for index, step in enumerate(sequence):
        _, epsilon = predict(x, torch.full((len(x),), sequence[max(index - 1, 0)], dtype=torch.long))
        predicted_x0 = (x - level.noise * epsilon) / level.signal
        level = noise_level(schedule, torch.full((len(x),), step, dtype=torch.long), x)
        x = ddim_update(predicted_x0, epsilon, level, torch.zeros_like(level.signal), None)
    return x

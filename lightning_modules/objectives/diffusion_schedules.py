"""Noise schedules of denoising diffusion as pure functions: betas, and the tables derived from them.

Time steps are 0-based here: step t = 0 is the paper's t = 1, the last step T - 1 its t = T.
Tables are float64 (the products over a thousand steps, and the bound's logarithms, lose
precision in float32) and are cast to the data's dtype only when a batch reads them.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor


def linear_betas(num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02, max_beta: float = 0.999) -> Tensor:
    """Ho et al. 2020's betas, linear from 1e-4 to 0.02 at T = 1000; scaled by 1000 / T for other T
    so the total noise stays comparable (as Nichol & Dhariwal 2021's code does), and clipped at
    0.999 so that T < 50 still gives valid betas."""
    scale = 1000.0 / num_steps
    return torch.linspace(scale * beta_start, scale * beta_end, num_steps, dtype=torch.float64).clamp(max=max_beta)


def cosine_betas(num_steps: int, offset: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2), betas clipped at 0.999 (Nichol & Dhariwal 2021, eq. 17)."""

    def alpha_bar(fraction: Tensor) -> Tensor:
        return torch.cos((fraction + offset) / (1 + offset) * math.pi / 2) ** 2

    steps = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    ratios = alpha_bar(steps[1:]) / alpha_bar(steps[:-1])
    return (1 - ratios).clamp(max=max_beta)


BETA_SCHEDULES: dict[str, Callable[[int], Tensor]] = {"linear": linear_betas, "cosine": cosine_betas}


def beta_schedule(name: str, num_steps: int) -> Tensor:
    """The betas of the schedule registered under `name`, shape (num_steps,), float64."""
    if name not in BETA_SCHEDULES:
        raise ValueError(f"Unknown noise schedule '{name}'. Available: {', '.join(BETA_SCHEDULES)}")
    if num_steps < 1:
        raise ValueError(f"num_steps (T) must be >= 1, got {num_steps}")
    return BETA_SCHEDULES[name](num_steps)


def alpha_bars(betas: Tensor) -> Tensor:
    """alpha_bar_t = prod_{s <= t} (1 - beta_s): the signal fraction left at step t (Ho et al. 2020, eq. 4)."""
    return torch.exp(torch.cumsum(torch.log1p(-betas.double()), dim=0))


def one_minus_alpha_bars(betas: Tensor) -> Tensor:
    """1 - alpha_bar_t to full relative precision near t = 0, where 1 - alpha_bar is about 1e-4
    and subtracting a rounded alpha_bar from 1 would keep only a few digits."""
    return -torch.expm1(torch.cumsum(torch.log1p(-betas.double()), dim=0))


def shifted(table: Tensor, first: float) -> Tensor:
    """table_{t-1} with table_{-1} = first: alpha_bar_{-1} = 1 and 1 - alpha_bar_{-1} = 0 (no noise before step 0)."""
    return torch.cat([table.new_full((1,), first), table[:-1]])


@dataclass(frozen=True)
class DiffusionSchedule:
    """The tables one schedule needs, each of shape (T,), float64.

    posterior_*: q(x_{t-1} | x_t, x_0) = N(x0_coefficient x_0 + xt_coefficient x_t, variance) (Ho et al. 2020, eq. 7).
    """

    betas: Tensor
    alpha_bar: Tensor
    one_minus_alpha_bar: Tensor
    posterior_x0_coefficient: Tensor
    posterior_xt_coefficient: Tensor
    posterior_variance: Tensor

    @classmethod
    def from_betas(cls, betas: Tensor) -> "DiffusionSchedule":
        betas = betas.to(torch.float64)
        if betas.dim() != 1 or not ((betas > 0) & (betas < 1)).all():
            raise ValueError("betas must be a 1-D table of values in (0, 1)")
        alpha_bar, one_minus = alpha_bars(betas), one_minus_alpha_bars(betas)
        previous, one_minus_previous = shifted(alpha_bar, 1.0), shifted(one_minus, 0.0)
        return cls(
            betas=betas,
            alpha_bar=alpha_bar,
            one_minus_alpha_bar=one_minus,
            posterior_x0_coefficient=previous.sqrt() * betas / one_minus,
            posterior_xt_coefficient=(1 - betas).sqrt() * one_minus_previous / one_minus,
            posterior_variance=one_minus_previous / one_minus * betas,
        )

    @classmethod
    def named(cls, name: str, num_steps: int) -> "DiffusionSchedule":
        return cls.from_betas(beta_schedule(name, num_steps))

    @property
    def num_steps(self) -> int:
        return len(self.betas)


def at_steps(table: Tensor, steps: Tensor, like: Tensor) -> Tensor:
    """table[steps] shaped (B, 1, ..., 1) to broadcast against `like`, on its device and in its dtype."""
    values = table.to(like.device)[steps.to(like.device)]
    return values.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


class NoiseLevel(NamedTuple):
    """x_t = signal x_0 + noise eps: signal = sqrt(alpha_bar_t), noise = sqrt(1 - alpha_bar_t), broadcastable."""

    signal: Tensor
    noise: Tensor


def noise_level(schedule: DiffusionSchedule, steps: Tensor, like: Tensor) -> NoiseLevel:
    """The NoiseLevel at `steps`, square roots taken in float64 before casting to like's dtype."""
    signal = at_steps(schedule.alpha_bar.sqrt(), steps, like)
    return NoiseLevel(signal, at_steps(schedule.one_minus_alpha_bar.sqrt(), steps, like))


def clean_level(like: Tensor) -> NoiseLevel:
    """The level of a clean image (before step 0): signal 1, noise 0."""
    ones = torch.ones(len(like), *([1] * (like.dim() - 1)), dtype=like.dtype, device=like.device)
    return NoiseLevel(ones, torch.zeros_like(ones))

"""ODE samplers of flow matching (Euler, Heun) and the ODE log-likelihood by the instantaneous
change of variables (Chen et al. 2018, theorem 1) with Hutchinson's trace estimator (Grathwohl et al. 2019).

Time runs from t = 0 (noise) to t = 1 (data), as in objectives/flow_matching.py. Each function
is pure over `velocity(x, t) -> dx/dt` with t of shape (B,).
"""

import math
from collections.abc import Callable

import torch
from torch import Tensor

from lightning_modules.samplers.choices import FLOW_SAMPLERS, check_sampler, check_steps

Velocity = Callable[[Tensor, Tensor], Tensor]
OnStep = Callable[[int, Tensor], None] | None


def times(x: Tensor, t: float) -> Tensor:
    return torch.full((len(x),), t, dtype=x.dtype, device=x.device)


def ode_sample(
    velocity: Velocity, start: Tensor, num_steps: int, solver: str = "heun", on_step: OnStep = None
) -> Tensor:
    """Integrate dx/dt = velocity from noise at t = 0 to an image at t = 1 in `num_steps` equal steps.

    Euler uses one velocity per step; Heun (the explicit trapezoid rule) two, and is second order.
    """
    check_sampler(solver, FLOW_SAMPLERS)
    step = 1.0 / check_steps(num_steps)
    x = start
    for index in range(num_steps):
        t = index * step
        slope = velocity(x, times(x, t))
        if solver == "heun":
            slope = 0.5 * (slope + velocity(x + step * slope, times(x, t + step)))
        x = x + step * slope
        if on_step is not None:
            on_step(index, x)
    return x


def rademacher_probes(shape: tuple[int, ...], num_probes: int, generator: torch.Generator | None) -> Tensor:
    """num_probes vectors of +-1 entries, shape (num_probes, *shape), drawn on the CPU."""
    if num_probes < 1:
        raise ValueError(f"num_probes must be >= 1, got {num_probes}")
    return torch.randint(0, 2, (num_probes, *shape), generator=generator).float() * 2 - 1


def velocity_and_divergence(velocity: Velocity, x: Tensor, t: Tensor, probes: Tensor | None) -> tuple[Tensor, Tensor]:
    """v(x, t) and its divergence per image: the mean of probe^T (dv/dx) probe over `probes`
    (Hutchinson 1989, unbiased), or the exact trace by one backward pass per dimension when None."""
    # Lightning evaluates under inference mode, where no graph is recorded at all: leave it here.
    with torch.inference_mode(False), torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        v = velocity(x, t)
        if probes is None:
            flat = v.flatten(1)
            columns = [
                torch.autograd.grad(flat[:, i].sum(), x, retain_graph=True)[0].flatten(1)[:, i]
                for i in range(flat.shape[1])
            ]
            return v.detach(), torch.stack(columns, dim=1).sum(dim=1)
        estimates = []
        for probe in probes:
            probe = probe.to(x)
            (jvp_t,) = torch.autograd.grad(v, x, probe, retain_graph=True)
            estimates.append((jvp_t * probe).flatten(1).sum(dim=1))
        return v.detach(), torch.stack(estimates).mean(dim=0)


def standard_normal_log_density(z: Tensor) -> Tensor:
    """log N(z; 0, I) per image."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).flatten(1).sum(dim=1)


def ode_log_likelihood(
    velocity: Velocity, data: Tensor, num_steps: int, probes: Tensor | None = None, solver: str = "heun"
) -> Tensor:
    """log p_1(x) per image in nats: integrate from t = 1 back to 0, then
    log p_1(x_1) = log N(x_0; 0, I) - int_0^1 div v(x_t, t) dt.

    `probes` (P, *data.shape), e.g. from `rademacher_probes` with a seeded generator, are kept
    for the whole path (a fixed estimator); None takes the exact divergence (small images only).
    """
    check_sampler(solver, FLOW_SAMPLERS)
    step = 1.0 / check_steps(num_steps)
    if probes is not None and (probes.dim() != data.dim() + 1 or probes.shape[1:] != data.shape):
        raise ValueError(f"probes must have shape (P, *{tuple(data.shape)}), got {tuple(probes.shape)}")
    x, integral = data, data.new_zeros(len(data))
    for index in range(num_steps):
        t = 1.0 - index * step
        slope, divergence = velocity_and_divergence(velocity, x, times(x, t), probes)
        if solver == "heun":
            slope_end, divergence_end = velocity_and_divergence(velocity, x - step * slope, times(x, t - step), probes)
            slope, divergence = 0.5 * (slope + slope_end), 0.5 * (divergence + divergence_end)
        x = x - step * slope
        integral = integral + step * divergence
    return standard_normal_log_density(x) - integral

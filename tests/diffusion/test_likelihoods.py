"""The DDPM bound and the ODE likelihood against exact answers on a toy Gaussian dataset."""

import math

import pytest
import torch

from lightning_modules.objectives.diffusion import reverse_variances, stratified_steps, variational_bound
from lightning_modules.objectives.diffusion_schedules import DiffusionSchedule
from lightning_modules.samplers.ode import ode_log_likelihood, rademacher_probes, velocity_and_divergence
from tests.diffusion.gaussian_oracle import (
    MEAN,
    exact_log_density,
    exact_log_mass,
    gaussian_images,
    oracle_predict,
    oracle_velocity,
)

NUM_DIMS = 4


def bound_gap_bits(denoise, num_images: int = 1000, noise_seed: int = 123) -> float:
    """Mean DDPM bound minus the exact NLL, in bits/dim, with noise independent of the data's seed."""
    schedule = DiffusionSchedule.named("cosine", 100)
    x0 = gaussian_images(num_images, seed=0)
    noise = torch.Generator().manual_seed(noise_seed)
    parts = variational_bound(
        lambda xt, steps: denoise(schedule)(xt, steps)[0],
        x0,
        schedule,
        reverse_variances(schedule, "large"),
        lambda: torch.randn(x0.shape, generator=noise, dtype=torch.float64),
    )
    gap_nats = parts["nll_bound_nats"] + exact_log_mass(x0)
    return gap_nats.mean().item() / (NUM_DIMS * math.log(2))


def test_ddpm_bound_with_the_oracle_denoiser_is_just_above_the_exact_nll():
    # Measured gap 0.02 to 0.14 bits/dim over five noise seeds: the oracle knows the continuous Gaussian,
    # not the 8-bit grid, so the decoder pays a little; a bound can never be below the truth.
    assert -0.05 < bound_gap_bits(oracle_predict) < 0.25


def test_ddpm_bound_of_a_denoiser_that_ignores_its_input_is_far_above_the_exact_nll():
    def mean_only(schedule):
        oracle = oracle_predict(schedule)
        return lambda xt, steps: (torch.full_like(xt, MEAN), oracle(xt, steps)[1])

    assert bound_gap_bits(mean_only, num_images=500) > 1.0


def test_ode_log_likelihood_with_the_oracle_velocity_matches_the_exact_density():
    x = gaussian_images(200, seed=0, quantized=False)
    log_likelihood = ode_log_likelihood(oracle_velocity, x, num_steps=50, probes=None)
    assert (log_likelihood - exact_log_density(x)).abs().max().item() < 0.03  # measured 0.007 nats per image


def linear_field():
    matrix = torch.randn(4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return matrix, lambda x, t: (x.flatten(1) @ matrix.T).reshape(x.shape)


def test_hutchinson_divergence_is_seeded_and_unbiased():
    matrix, velocity = linear_field()
    # 4000 copies of one point, one probe each: 4000 single-probe estimates in one backward pass.
    x, t = torch.zeros(4000, 1, 2, 2, dtype=torch.float64), torch.zeros(4000, dtype=torch.float64)
    probes = torch.randint(0, 2, (1, 4000, 1, 2, 2), generator=torch.Generator().manual_seed(0)).double() * 2 - 1
    estimate = velocity_and_divergence(velocity, x, t, probes)[1].mean()
    exact = velocity_and_divergence(velocity, x[:1], t[:1], None)[1]
    assert exact.item() == pytest.approx(matrix.trace().item())
    off_diagonal = (matrix**2).sum() - (matrix.diag() ** 2).sum()
    assert abs(estimate.item() - exact.item()) < 5 * math.sqrt(2 * off_diagonal.item() / 4000)


def test_ode_log_likelihood_is_reproducible_from_its_seed():
    _, velocity = linear_field()
    x = gaussian_images(3, seed=0, quantized=False)

    def run(seed):
        probes = rademacher_probes(tuple(x.shape), 2, torch.Generator().manual_seed(seed))
        return ode_log_likelihood(velocity, x, 4, probes)

    assert torch.equal(run(0), run(0)) and not torch.equal(run(0), run(1))


def test_stratified_steps_cover_every_step_evenly():
    every = stratified_steps(11, 10, torch.rand(10, 1))
    assert every.flatten().tolist() == list(range(1, 11))  # one stratum per step: the exact sum
    counts = torch.bincount(stratified_steps(1000, 7, torch.rand(7, 20000)).flatten(), minlength=1000)
    assert counts[0] == 0 and counts[1:].float().std() / counts[1:].float().mean() < 0.15
    with pytest.raises(ValueError, match="bound_steps must be in"):
        stratified_steps(1000, 1000, torch.rand(1000, 1))


def test_stratified_bound_estimate_agrees_with_the_full_sum():
    schedule, x0 = DiffusionSchedule.named("linear", 200), gaussian_images(2000, seed=1)
    oracle, variances, noise = oracle_predict(schedule), reverse_variances(schedule, "large"), torch.Generator()

    def bound(steps):
        noise.manual_seed(5)
        draw = lambda: torch.randn(x0.shape, generator=noise, dtype=torch.float64)  # noqa: E731
        return variational_bound(lambda xt, s: oracle(xt, s)[0], x0, schedule, variances, draw, steps)

    uniform = torch.rand(20, len(x0), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    full, estimate = (
        bound(None)["nll_bound_nats"].mean(),
        bound(stratified_steps(200, 20, uniform))["nll_bound_nats"].mean(),
    )
    assert estimate.item() == pytest.approx(full.item(), rel=0.01)

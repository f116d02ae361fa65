"""Samplers over an oracle denoiser: DDPM, DDIM (determinism, inversion), Euler/Heun, guidance, bad input."""

import pytest
import torch

from lightning_modules.objectives.diffusion import reverse_variances
from lightning_modules.objectives.diffusion_schedules import DiffusionSchedule
from lightning_modules.samplers.choices import DIFFUSION_SAMPLERS, check_guidance, check_sampler, check_steps
from lightning_modules.samplers.diffusion import ddim_invert, ddim_sample, ddim_timesteps, ddpm_sample
from lightning_modules.samplers.guidance import classifier_free_guidance
from lightning_modules.samplers.ode import ode_log_likelihood, ode_sample, rademacher_probes
from tests.diffusion.gaussian_oracle import MEAN, SHAPE, STD, oracle_predict, oracle_velocity

SCHEDULE = DiffusionSchedule.named("cosine", 1000)


def latents(n: int, seed: int = 7) -> torch.Tensor:
    return torch.randn(n, *SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def assert_gaussian_samples(x: torch.Tensor, std_tolerance: float) -> None:
    assert x.mean().item() == pytest.approx(MEAN, abs=0.02)
    assert x.std().item() == pytest.approx(STD, abs=std_tolerance)


def test_ancestral_ddpm_draws_the_data_distribution():
    schedule = DiffusionSchedule.named("cosine", 100)
    x = ddpm_sample(
        oracle_predict(schedule),
        latents(2000),
        schedule,
        reverse_variances(schedule, "large"),
        torch.Generator().manual_seed(0),
    )
    assert_gaussian_samples(x, 0.02)


def test_ddim_with_eta_one_is_stochastic_and_draws_the_data_distribution():
    predict = oracle_predict(SCHEDULE)
    first = ddim_sample(predict, latents(2000), SCHEDULE, 50, eta=1.0, generator=torch.Generator().manual_seed(0))
    again = ddim_sample(predict, latents(2000), SCHEDULE, 50, eta=1.0, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(first, again)
    assert_gaussian_samples(first, 0.04)


def test_ddim_with_eta_zero_is_deterministic_and_inverts_to_its_latent():
    predict, z = oracle_predict(SCHEDULE), latents(300)
    images = ddim_sample(predict, z, SCHEDULE, 100, eta=0.0, generator=torch.Generator().manual_seed(0), clip=False)
    assert torch.equal(images, ddim_sample(predict, z, SCHEDULE, 100, clip=False))  # no noise drawn at eta=0
    error_100 = (ddim_invert(predict, images, SCHEDULE, 100) - z).abs().mean().item()
    finer = ddim_sample(predict, z, SCHEDULE, 200, clip=False)
    error_200 = (ddim_invert(predict, finer, SCHEDULE, 200) - z).abs().mean().item()
    # Measured 0.035 and 0.017: first order in the step size, so exact in the limit.
    assert error_100 < 0.06 and error_200 < 0.6 * error_100


def test_ddim_steps_are_evenly_spaced_from_the_last_to_the_first():
    assert ddim_timesteps(1000, 1) == [999]
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1))
    assert ddim_timesteps(1000, 4) == [999, 666, 333, 0]


@pytest.mark.parametrize(("solver", "steps"), [("euler", 100), ("heun", 20)])
def test_ode_solvers_carry_noise_to_the_data_distribution(solver, steps):
    assert_gaussian_samples(ode_sample(oracle_velocity, latents(2000), steps, solver), 0.02)


def test_heun_is_more_accurate_than_euler_at_the_same_steps():
    reference = ode_sample(oracle_velocity, latents(200), 400, "heun")
    errors = {s: (ode_sample(oracle_velocity, latents(200), 10, s) - reference).abs().max() for s in ("euler", "heun")}
    assert errors["heun"] < errors["euler"] / 5


def labelled_network(x, time, labels):
    """A stand-in network whose output says which label it saw (-1 for none)."""
    shift = torch.full((len(x),), -1.0) if labels is None else labels.float()
    return x + shift.reshape(-1, 1, 1, 1)


def test_guidance_scale_zero_is_unconditional_one_conditional_and_beyond_extrapolates():
    x, t, labels = torch.zeros(3, 1, 2, 2), torch.zeros(3), torch.tensor([2, 5, 7])
    unconditional, conditional = labelled_network(x, t, None), labelled_network(x, t, labels)
    assert torch.equal(classifier_free_guidance(labelled_network, labels, 0.0)(x, t), unconditional)
    assert torch.equal(classifier_free_guidance(labelled_network, labels, 1.0)(x, t), conditional)
    guided = classifier_free_guidance(labelled_network, labels, 3.0)(x, t)
    assert torch.allclose(guided, unconditional + 3 * (conditional - unconditional))


def test_bad_sampler_settings_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="Unknown sampler 'dpm'. Available: ddpm, ddim"):
        check_sampler("dpm", DIFFUSION_SAMPLERS)
    with pytest.raises(ValueError, match="Unknown sampler 'rk4'. Available: euler, heun"):
        ode_sample(oracle_velocity, latents(1), 10, "rk4")
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="steps must be a whole number >= 1"):
            check_steps(bad)
    with pytest.raises(ValueError, match="steps must be a whole number >= 1"):
        ode_log_likelihood(oracle_velocity, latents(1), 0)
    with pytest.raises(ValueError, match="num_probes must be >= 1"):
        rademacher_probes((1, 1, 2, 2), 0, None)
    with pytest.raises(ValueError, match="exceeds the T=1000 steps"):
        ddim_timesteps(1000, 1001)
    with pytest.raises(ValueError, match="eta must be >= 0"):
        ddim_sample(oracle_predict(SCHEDULE), latents(1), SCHEDULE, 10, eta=-1)
    with pytest.raises(ValueError, match="unconditional"):
        check_guidance(2.0, conditional=False)
    with pytest.raises(ValueError, match="guidance must be >= 0"):
        check_guidance(-1.0, conditional=True)
    assert check_guidance(1.0, conditional=False) == 1.0

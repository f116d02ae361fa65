"""Noise schedules and the forward process: monotone tables, q(x_t|x_0) and the posterior in closed form."""

import pytest
import torch

from lightning_modules.objectives.diffusion import diffuse, posterior_mean, reverse_variances
from lightning_modules.objectives.diffusion_schedules import BETA_SCHEDULES, DiffusionSchedule, beta_schedule


@pytest.mark.parametrize("name", list(BETA_SCHEDULES))
def test_alpha_bar_falls_from_near_one_to_near_zero(name):
    schedule = DiffusionSchedule.named(name, 1000)
    assert (schedule.alpha_bar.diff() < 0).all()
    assert schedule.alpha_bar[0] > 0.99 and schedule.alpha_bar[-1] < 1e-4
    assert ((schedule.betas > 0) & (schedule.betas < 1)).all()


def test_linear_schedule_matches_ho_et_al_at_1000_steps():
    betas = beta_schedule("linear", 1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)


def test_unknown_schedule_lists_the_choices():
    with pytest.raises(ValueError, match="Unknown noise schedule 'cosin'. Available: linear, cosine"):
        beta_schedule("cosin", 10)
    with pytest.raises(ValueError, match="num_steps"):
        beta_schedule("linear", 0)


def test_forward_process_mean_and_variance_by_simulation():
    schedule = DiffusionSchedule.named("linear", 100)
    x0 = torch.full((100000, 1, 1, 1), 0.6, dtype=torch.float64)
    steps = torch.full((100000,), 40)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    xt = diffuse(x0, steps, noise, schedule)
    alpha_bar = schedule.alpha_bar[40]
    assert xt.mean().item() == pytest.approx((alpha_bar.sqrt() * 0.6).item(), abs=0.015)  # 5 standard errors
    assert xt.var().item() == pytest.approx((1 - alpha_bar).item(), rel=0.03)


def test_posterior_matches_its_closed_form_by_bayes_rule():
    """q(x_{t-1}|x_t, x_0) is q(x_t|x_{t-1}) q(x_{t-1}|x_0) normalised: a product of Gaussians in x_{t-1}."""
    schedule = DiffusionSchedule.named("cosine", 50)
    x0, xt, t = torch.tensor([[[[0.3]]]], dtype=torch.float64), torch.tensor([[[[-0.2]]]], dtype=torch.float64), 17
    beta, alpha_bar_previous = schedule.betas[t], schedule.alpha_bar[t - 1]
    # likelihood of x_{t-1}: N(x_t; sqrt(1 - beta) x_{t-1}, beta); prior: N(sqrt(ab_{t-1}) x_0, 1 - ab_{t-1})
    precision = (1 - beta) / beta + 1 / (1 - alpha_bar_previous)
    mean = ((1 - beta).sqrt() * xt / beta + alpha_bar_previous.sqrt() * x0 / (1 - alpha_bar_previous)) / precision
    assert posterior_mean(x0, xt, torch.tensor([t]), schedule).item() == pytest.approx(mean.item(), rel=1e-10)
    assert schedule.posterior_variance[t].item() == pytest.approx((1 / precision).item(), rel=1e-10)


def test_posterior_at_the_first_step_is_the_clean_image():
    schedule = DiffusionSchedule.named("linear", 10)
    x0, xt = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    assert torch.allclose(posterior_mean(x0, xt, torch.zeros(3, dtype=torch.long), schedule), x0)
    assert schedule.posterior_variance[0] == 0


def test_reverse_variances_are_positive_and_named():
    schedule = DiffusionSchedule.named("linear", 100)
    for kind in ("large", "small"):
        assert (reverse_variances(schedule, kind) > 0).all()
    with pytest.raises(ValueError, match="Available: large, small"):
        reverse_variances(schedule, "fixed")

"""Prediction targets and their conversions, loss weighting, and the flow-matching path."""

import pytest
import torch

from lightning_modules.objectives.diffusion import (
    PREDICTION_TYPES,
    denoised_and_noise,
    denoising_loss,
    loss_weight,
    prediction_target,
)
from lightning_modules.objectives.diffusion_schedules import NoiseLevel
from lightning_modules.objectives.flow_matching import (
    flow_matching_loss,
    flow_matching_path,
    flow_matching_velocity,
)


def noisy_batch():
    generator = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(4, 1, 3, 3, generator=generator) * 2 - 1, torch.randn(4, 1, 3, 3, generator=generator)
    alpha_bar = torch.tensor([0.9, 0.5, 0.1, 0.01]).reshape(4, 1, 1, 1)
    level = NoiseLevel(alpha_bar.sqrt(), (1 - alpha_bar).sqrt())
    return x0, noise, level, level.signal * x0 + level.noise * noise


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_each_target_converts_back_to_the_clean_image_and_the_noise(prediction_type):
    x0, noise, level, xt = noisy_batch()
    target = prediction_target(prediction_type, x0, noise, level)
    denoised, predicted_noise = denoised_and_noise(prediction_type, target, xt, level)
    assert torch.allclose(denoised, x0, atol=1e-4) and torch.allclose(predicted_noise, noise, atol=1e-4)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_epsilon_equivalent_weighting_gives_the_epsilon_loss_of_the_same_error(prediction_type):
    x0, noise, level, xt = noisy_batch()
    wrong_noise = noise + 0.1 * torch.randn(noise.shape, generator=torch.Generator().manual_seed(1))
    wrong_x0 = (xt - level.noise * wrong_noise) / level.signal
    output = prediction_target(prediction_type, wrong_x0, wrong_noise, level)
    target = prediction_target(prediction_type, x0, noise, level)
    weight = loss_weight(prediction_type, "epsilon_equivalent", level)
    expected = denoising_loss(wrong_noise, noise, torch.ones(4))
    assert denoising_loss(output, target, weight).item() == pytest.approx(expected.item(), rel=1e-4)


def test_loss_is_float32_under_low_precision_outputs():
    output = torch.zeros(2, 1, 2, 2, dtype=torch.bfloat16)
    assert denoising_loss(output, torch.ones(2, 1, 2, 2), torch.ones(2)).dtype == torch.float32


def test_unknown_prediction_type_and_weighting_list_the_choices():
    x0, noise, level, _ = noisy_batch()
    with pytest.raises(ValueError, match="Available: epsilon, x0, v"):
        prediction_target("eps", x0, noise, level)
    with pytest.raises(ValueError, match="Available: unweighted, epsilon_equivalent"):
        loss_weight("x0", "snr", level)


def test_flow_matching_path_runs_from_noise_to_data_at_the_target_velocity():
    data, noise = torch.rand(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    assert torch.equal(flow_matching_path(data, noise, torch.zeros(3)), noise)
    assert torch.equal(flow_matching_path(data, noise, torch.ones(3)), data)
    t, dt = torch.full((3,), 0.3), 1e-3
    finite_difference = (flow_matching_path(data, noise, t + dt) - flow_matching_path(data, noise, t)) / dt
    assert torch.allclose(finite_difference, flow_matching_velocity(data, noise), atol=1e-3)
    assert flow_matching_loss(flow_matching_velocity(data, noise), data - noise).item() == 0
    with pytest.raises(ValueError, match="sigma_min"):
        flow_matching_velocity(data, noise, sigma_min=1.0)

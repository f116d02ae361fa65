"""Decoder likelihoods against torch.distributions, hand computations and normalisation."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from lightning_modules.objectives.likelihoods import (
    BernoulliLikelihood,
    DiscretizedLogisticLikelihood,
    GaussianLikelihood,
)


def test_bernoulli_matches_a_hand_computation():
    x = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    logits = torch.tensor([1.2, -0.1]).view(1, 2, 1, 1)
    hand = math.log(1 / (1 + math.exp(-1.2))) + math.log(1 - 1 / (1 + math.exp(0.1)))
    assert BernoulliLikelihood().log_prob(x, logits).item() == pytest.approx(hand, abs=1e-6)


def test_bernoulli_sums_over_pixels_per_image():
    x = (torch.rand(3, 1, 4, 4) > 0.5).float()
    logits = torch.randn(3, 1, 4, 4)
    expected = Bernoulli(logits=logits).log_prob(x).sum(dim=(1, 2, 3))
    torch.testing.assert_close(BernoulliLikelihood().log_prob(x, logits), expected)


@pytest.mark.parametrize("bad_value", [-0.5, 1.5, 255.0])
def test_bernoulli_rejects_data_outside_unit_interval(bad_value):
    x = torch.zeros(2, 1, 3, 3)
    x[1, 0, 1, 1] = bad_value
    with pytest.raises(ValueError, match=r"Bernoulli likelihood needs data in \[0, 1\]"):
        BernoulliLikelihood().log_prob(x, torch.zeros_like(x))


def test_wrong_decoder_output_shape_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 2, 3, 3\).*params_per_channel"):
        BernoulliLikelihood().log_prob(torch.zeros(2, 1, 3, 3), torch.zeros(2, 2, 3, 3))


def test_gaussian_with_fixed_variance_matches_normal():
    x, mean = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    expected = Normal(mean, math.sqrt(0.1)).log_prob(x).sum(dim=(1, 2, 3))
    torch.testing.assert_close(GaussianLikelihood(variance=0.1).log_prob(x, mean), expected)


def test_gaussian_with_learned_variance_matches_normal():
    x = torch.rand(3, 3, 4, 4)
    mean, log_variance = torch.rand(3, 3, 4, 4), torch.randn(3, 3, 4, 4)
    likelihood = GaussianLikelihood(learn_variance=True)
    assert likelihood.params_per_channel == 2
    expected = Normal(mean, (0.5 * log_variance).exp()).log_prob(x).sum(dim=(1, 2, 3))
    torch.testing.assert_close(likelihood.log_prob(x, torch.cat([mean, log_variance], 1)), expected)


def test_gaussian_rejects_non_positive_variance():
    with pytest.raises(ValueError, match="variance must be positive, got 0"):
        GaussianLikelihood(variance=0)


@pytest.mark.parametrize(("location", "log_scale"), [(0.0, -2.0), (0.3, -6.0), (-1.3, 0.5), (0.99, -7.0), (2.0, 3.0)])
def test_discretized_logistic_probabilities_sum_to_one(location, log_scale):
    x = (torch.arange(256, dtype=torch.float64) / 255).view(256, 1, 1, 1)
    params = torch.tensor([location, log_scale], dtype=torch.float64).view(1, 2, 1, 1).expand(256, 2, 1, 1)
    log_mass = DiscretizedLogisticLikelihood().log_prob(x, params)
    assert torch.logsumexp(log_mass, dim=0).item() == pytest.approx(0.0, abs=1e-9)


def test_discretized_logistic_matches_difference_of_cdfs():
    torch.manual_seed(0)
    bins = torch.randint(1, 255, (4, 3, 2, 2)).double()
    x = bins / 255
    mean, log_scale = torch.rand(4, 3, 2, 2) * 2 - 1, torch.rand(4, 3, 2, 2) * 2 - 3
    centre = 2 * bins / 255 - 1
    cdf = torch.sigmoid
    scale = log_scale.double().exp()
    expected = torch.log(cdf((centre + 1 / 255 - mean) / scale) - cdf((centre - 1 / 255 - mean) / scale))
    params = torch.cat([mean, log_scale], 1).double()
    torch.testing.assert_close(DiscretizedLogisticLikelihood().log_prob(x, params), expected.sum(dim=(1, 2, 3)))


def test_discretized_logistic_is_finite_far_in_the_tails():
    x = torch.full((1, 1, 1, 1), 128 / 255)
    far_left = torch.tensor([-1.0, -7.0]).view(1, 2, 1, 1).requires_grad_(True)
    log_mass = DiscretizedLogisticLikelihood().log_prob(x, far_left)
    log_mass.backward()
    # The bin sits about 1000 scales away: the log mass is very negative but finite, gradients too.
    assert torch.isfinite(log_mass).all() and log_mass.item() < -500
    assert torch.isfinite(far_left.grad).all()


def test_likelihood_means_are_images_in_unit_interval():
    params = torch.randn(2, 6, 4, 4) * 5
    for likelihood, channels in [
        (BernoulliLikelihood(), 6),
        (GaussianLikelihood(learn_variance=True), 3),
        (DiscretizedLogisticLikelihood(), 3),
    ]:
        image = likelihood.mean(params)
        assert image.shape == (2, channels, 4, 4)
        assert image.min() >= 0 and image.max() <= 1
        drawn = likelihood.sample(params, generator=torch.Generator().manual_seed(0))
        assert drawn.shape == (2, channels, 4, 4) and drawn.min() >= 0 and drawn.max() <= 1

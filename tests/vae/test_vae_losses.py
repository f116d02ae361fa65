"""ELBO terms against hand computations, Monte Carlo and a model whose log p(x) is known exactly."""

import math

import pytest
import torch

from lightning_modules.objectives.bits_per_dim import nats_to_bits_per_dim
from lightning_modules.objectives.elbo import (
    beta_vae_objective,
    beta_warmup,
    diagonal_gaussian_log_prob,
    gaussian_kl_to_standard_normal,
    importance_log_weights,
    importance_weighted_log_likelihood,
    negative_elbo,
    reparameterize,
    standard_normal_log_prob,
)
from lightning_modules.objectives.likelihoods import BernoulliLikelihood


def _log_sigmoid(value: float) -> float:
    return -math.log(1 + math.exp(-value))


def test_negative_elbo_of_a_tiny_model_equals_a_hand_computation():
    # One latent, two Bernoulli pixels, decoder logits = w z + b; q(z|x) = N(0.5, 0.5^2); noise 0.2.
    mean, log_variance, noise = (
        torch.tensor([[0.5]]),
        torch.tensor([[math.log(0.25)]]),
        torch.tensor([[0.2]]),
    )
    w, b = torch.tensor([2.0, -1.0]), torch.tensor([0.0, 0.5])
    x = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    z = reparameterize(mean, log_variance, noise)
    logits = (z * w + b).view(1, 2, 1, 1)
    log_likelihood = BernoulliLikelihood().log_prob(x, logits)
    kl = gaussian_kl_to_standard_normal(mean, log_variance)
    # By hand: z = 0.5 + 0.5 * 0.2 = 0.6, logits (1.2, -0.1), x = (1, 0).
    hand_log_likelihood = _log_sigmoid(1.2) + _log_sigmoid(0.1)
    hand_kl = 0.5 * (0.25 + 0.5**2 - 1 - math.log(0.25))
    assert z.item() == pytest.approx(0.6)
    assert kl.item() == pytest.approx(hand_kl, abs=1e-6)
    assert negative_elbo(log_likelihood, kl).item() == pytest.approx(hand_kl - hand_log_likelihood, abs=1e-6)
    assert negative_elbo(log_likelihood, kl).item() == pytest.approx(1.350826, abs=1e-5)


def test_negative_elbo_averages_over_images():
    log_likelihood, kl = torch.tensor([-100.0, -80.0]), torch.tensor([10.0, 30.0])
    assert negative_elbo(log_likelihood, kl).item() == pytest.approx(110.0)


def test_analytic_kl_matches_monte_carlo():
    generator = torch.Generator().manual_seed(0)
    mean, log_variance = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([0.5, -1.5, 0.0])
    noise = torch.randn(400_000, 3, generator=generator, dtype=torch.float64)
    z = reparameterize(mean.double(), log_variance.double(), noise)
    monte_carlo = (diagonal_gaussian_log_prob(z, mean, log_variance) - standard_normal_log_prob(z)).mean()
    analytic = gaussian_kl_to_standard_normal(mean, log_variance)
    assert monte_carlo.item() == pytest.approx(analytic.item(), abs=0.02)
    assert analytic.item() > 0


def test_kl_is_zero_only_at_the_prior():
    assert gaussian_kl_to_standard_normal(torch.zeros(2, 4), torch.zeros(2, 4)).tolist() == [
        0.0,
        0.0,
    ]


def test_gaussian_log_densities_match_torch_distributions():
    z, mean, log_variance = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    normal = torch.distributions.Normal(mean, (0.5 * log_variance).exp())
    torch.testing.assert_close(diagonal_gaussian_log_prob(z, mean, log_variance), normal.log_prob(z).sum(-1))
    standard = torch.distributions.Normal(0.0, 1.0)
    torch.testing.assert_close(standard_normal_log_prob(z), standard.log_prob(z).sum(-1))


class LinearGaussianModel:
    """p(z) = N(0, 1), p(x|z) = N(a z + b, s^2), so log p(x) = log N(x; b, a^2 + s^2) exactly."""

    a, b, s = 2.0, 0.5, 0.7

    def log_p_x(self, x: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Normal(self.b, math.sqrt(self.a**2 + self.s**2)).log_prob(x)

    def exact_posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        variance = 1 / (1 + self.a**2 / self.s**2)
        return (variance * self.a * (x - self.b) / self.s**2).unsqueeze(-1), torch.full((len(x), 1), math.log(variance))

    def log_weights_for(self, x, mean, log_variance, generator):
        def draw(k: int) -> torch.Tensor:
            noise = torch.randn(k, *mean.shape, generator=generator, dtype=mean.dtype)
            z = reparameterize(mean, log_variance, noise)
            log_likelihood = torch.distributions.Normal(self.a * z[..., 0] + self.b, self.s).log_prob(x)
            return importance_log_weights(log_likelihood, z, mean, log_variance)

        return draw

    def analytic_elbo(self, x, mean, log_variance) -> torch.Tensor:
        """E_q[log p(x|z)] - KL for q = N(m, v): E_q (x - b - a z)^2 = (x - b - a m)^2 + a^2 v."""
        m, v = mean[:, 0], log_variance[:, 0].exp()
        expected_log_likelihood = -0.5 * math.log(2 * math.pi * self.s**2) - (
            (x - self.b - self.a * m) ** 2 + self.a**2 * v
        ) / (2 * self.s**2)
        return expected_log_likelihood - gaussian_kl_to_standard_normal(mean, log_variance)


X = torch.tensor([-1.0, 0.3, 2.5], dtype=torch.float64)
# The exact posterior has means (-0.67, -0.09, 0.89), variance 0.11; this q is shifted and too wide.
POOR_POSTERIOR = (
    torch.tensor([[-0.4], [0.2], [0.6]], dtype=torch.float64),
    torch.full((3, 1), math.log(0.3), dtype=torch.float64),
)


def test_iwae_with_the_exact_posterior_is_exact_for_any_k():
    model = LinearGaussianModel()
    mean, log_variance = model.exact_posterior(X)
    draw = model.log_weights_for(X, mean.double(), log_variance.double(), torch.Generator().manual_seed(0))
    for num_samples in (1, 7):
        estimate = importance_weighted_log_likelihood(draw, num_samples, chunk_size=3)
        torch.testing.assert_close(estimate, model.log_p_x(X))


def test_iwae_with_k1_is_the_elbo():
    model = LinearGaussianModel()
    mean, log_variance = POOR_POSTERIOR
    # One draw: exactly the one-sample log weight, the single-sample ELBO estimate.
    one = model.log_weights_for(X, mean, log_variance, torch.Generator().manual_seed(3))(1)[0]
    again = model.log_weights_for(X, mean, log_variance, torch.Generator().manual_seed(3))
    torch.testing.assert_close(importance_weighted_log_likelihood(again, 1, chunk_size=1), one)
    # In expectation over many draws, a one-sample log weight is the analytic ELBO.
    draw = model.log_weights_for(X, mean, log_variance, torch.Generator().manual_seed(1))
    one_sample_estimates = draw(200_000)
    torch.testing.assert_close(
        one_sample_estimates.mean(0), model.analytic_elbo(X, mean, log_variance), atol=0.02, rtol=0
    )


def test_iwae_tightens_with_k_and_stays_below_log_p_x():
    model = LinearGaussianModel()
    mean, log_variance = POOR_POSTERIOR
    draw = model.log_weights_for(X, mean, log_variance, torch.Generator().manual_seed(2))
    elbo = model.analytic_elbo(X, mean, log_variance)
    averages = {
        k: torch.stack([importance_weighted_log_likelihood(draw, k, 16) for _ in range(400)]).mean(0) for k in (5, 50)
    }
    assert (averages[5] > elbo + 0.05).all()
    assert (averages[50] > averages[5]).all()
    assert (averages[50] < model.log_p_x(X) + 0.01).all()


def test_iwae_chunks_combine_exactly():
    log_weights = torch.randn(23, 4, dtype=torch.float64) * 30
    position = 0

    def next_rows(k: int) -> torch.Tensor:
        nonlocal position
        rows = log_weights[position : position + k]
        position += k
        return rows

    chunked = importance_weighted_log_likelihood(next_rows, 23, chunk_size=5)
    assert position == 23
    torch.testing.assert_close(chunked, torch.logsumexp(log_weights, 0) - math.log(23))


@pytest.mark.parametrize(
    ("num_samples", "chunk_size", "message"),
    [(0, 5, "num_samples"), (-3, 5, "num_samples"), (5, 0, "chunk_size")],
)
def test_iwae_rejects_non_positive_sizes(num_samples, chunk_size, message):
    with pytest.raises(ValueError, match=f"{message}.* must be positive"):
        importance_weighted_log_likelihood(lambda k: torch.zeros(k, 1), num_samples, chunk_size)


def test_beta_objective_weights_the_kl_only():
    log_likelihood, kl = torch.tensor([-100.0, -80.0]), torch.tensor([10.0, 30.0])
    assert beta_vae_objective(log_likelihood, kl, beta=4.0).item() == pytest.approx(90 + 80)
    assert beta_vae_objective(log_likelihood, kl, beta=1.0).item() == negative_elbo(log_likelihood, kl).item()
    with pytest.raises(ValueError, match="beta must be non-negative, got -1"):
        beta_vae_objective(log_likelihood, kl, beta=-1.0)


def test_beta_warmup_is_linear_then_constant():
    assert [beta_warmup(step, 4.0, 100) for step in (0, 25, 100, 1000)] == [0.0, 1.0, 4.0, 4.0]
    assert beta_warmup(0, 2.0, 0) == 2.0
    with pytest.raises(ValueError, match="beta must be non-negative"):
        beta_warmup(10, -0.5, 100)
    with pytest.raises(ValueError, match="warmup_steps must be non-negative"):
        beta_warmup(10, 1.0, -1)


def test_bits_per_dim_of_a_uniform_8_bit_model_is_eight():
    nats = torch.tensor(784 * math.log(256))
    assert nats_to_bits_per_dim(nats, 784).item() == pytest.approx(8.0)
    with pytest.raises(ValueError, match="num_dims must be positive"):
        nats_to_bits_per_dim(nats, 0)

"""Losses as small pure functions; each names the paper it comes from.

Adversarial losses take discriminator logits (any shape, e.g. PatchGAN maps) and return scalars.
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# --- GAN: adversarial losses ---


def non_saturating_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014), written with softplus."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def non_saturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E[log D(G(z))], the non-saturating generator loss (Goodfellow et al. 2014, section 3)."""
    return F.softplus(-fake_logits).mean()


def minimax_generator_loss(fake_logits: Tensor) -> Tensor:
    """E[log(1 - D(G(z)))], the original minimax generator objective (Goodfellow et al. 2014)."""
    return -F.softplus(fake_logits).mean()


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E[D(G(z))] (Lim & Ye 2017)."""
    return -fake_logits.mean()


def least_squares_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2] (LSGAN, Mao et al. 2017, a=0, b=c=1)."""
    return 0.5 * ((real_logits - 1) ** 2).mean() + 0.5 * (fake_logits**2).mean()


def least_squares_generator_loss(fake_logits: Tensor) -> Tensor:
    """E[(D(G(z)) - 1)^2] (LSGAN as used by CycleGAN, Zhu et al. 2017)."""
    return ((fake_logits - 1) ** 2).mean()


def wasserstein_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[D(G(z))] - E[D(x)], the critic loss of WGAN (Arjovsky et al. 2017)."""
    return fake_logits.mean() - real_logits.mean()


def wasserstein_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E[D(G(z))] (Arjovsky et al. 2017)."""
    return -fake_logits.mean()


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, mixing: Tensor) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = mixing * real + (1 - mixing) * fake (WGAN-GP, Gulrajani et al. 2017).

    `mixing` holds one uniform draw per sample, shape (B, 1, 1, 1); passing it in keeps this pure.
    """
    interpolated = (mixing * real + (1 - mixing) * fake).requires_grad_(True)
    scores = critic(interpolated)
    (gradients,) = torch.autograd.grad(scores.sum(), interpolated, create_graph=True)
    return ((gradients.flatten(1).norm(dim=1) - 1) ** 2).mean()


ADVERSARIAL_LOSSES: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "non_saturating": (non_saturating_discriminator_loss, non_saturating_generator_loss),
    "minimax": (non_saturating_discriminator_loss, minimax_generator_loss),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
    "least_squares": (least_squares_discriminator_loss, least_squares_generator_loss),
    "wasserstein": (wasserstein_discriminator_loss, wasserstein_generator_loss),
}


# Losses whose discriminator outputs logits of a probability: D(x) = sigmoid(logit).
PROBABILITY_LOSSES = frozenset({"non_saturating", "minimax"})


def mean_discriminator_output(logits: Tensor, loss: str) -> Tensor:
    """The discriminator's mean output: a probability D(x) for `PROBABILITY_LOSSES`, else the raw score.

    Under the non-saturating and minimax losses D(x) = D(G(z)) = 1/2 at the game's equilibrium
    (Goodfellow et al. 2014, prop. 1); hinge, least-squares and Wasserstein scores have no such scale.
    """
    logits = logits.detach().float()
    return torch.sigmoid(logits).mean() if loss in PROBABILITY_LOSSES else logits.mean()


def adversarial_loss(
    name: str,
) -> tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """Return the (discriminator loss, generator loss) pair registered under `name`."""
    if name not in ADVERSARIAL_LOSSES:
        raise ValueError(f"Unknown loss '{name}'. Available: {', '.join(ADVERSARIAL_LOSSES)}")
    return ADVERSARIAL_LOSSES[name]


# --- Flows: exact likelihood in bits/dim ---


def bits_per_dim(log_prob: Tensor, num_dims: int, num_bits: int = 8) -> Tensor:
    """Per-image bits/dim of b-bit data: -log p(u) / (D ln 2) + b (Theis et al. 2016; RealNVP).

    `log_prob` is the continuous log-density in nats of the dequantized image u in [0, 1)^D,
    every Jacobian term included; D = C*H*W (not H*W). The + b converts the density on [0, 1)
    to one on the integer grid [0, 2^b): log p_[0,2^b)(y) = log p_[0,1)(u) - D b ln 2.
    A density uniform on [0, 1)^D has log_prob = 0 and scores exactly b bits/dim.
    """
    if num_dims <= 0:
        raise ValueError(f"num_dims must be positive, got {num_dims}")
    return -log_prob / (num_dims * math.log(2)) + num_bits


def mean_bits_per_dim(log_prob: Tensor, num_dims: int, num_bits: int = 8) -> Tensor:
    """Batch mean of `bits_per_dim`; a NaN image makes the mean NaN (never silently dropped)."""
    return bits_per_dim(log_prob, num_dims, num_bits).mean()


# --- VAE: ELBO terms ---
# Shapes: latent tensors (B, latent_dim) or (K, B, latent_dim); per-image terms (B,) in nats.
# The ELBO sums over pixels and latent dimensions and averages over images, so it is a bound on
# log p(x) per image, not a reweighted objective (a mean-reduced MSE plus a small KL weight is not an ELBO).

LOG_2PI = math.log(2 * math.pi)


def reparameterize(mean: Tensor, log_variance: Tensor, noise: Tensor) -> Tensor:
    """z = mean + exp(log_variance / 2) * noise, noise ~ N(0, I) (Kingma & Welling 2014, eq. 10)."""
    return mean + torch.exp(0.5 * log_variance) * noise


def gaussian_kl_to_standard_normal(mean: Tensor, log_variance: Tensor) -> Tensor:
    """KL(q || p) for q = N(mean, diag exp(log_variance)) and p = N(0, I), summed over latents.

    0.5 sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2) (Kingma & Welling 2014, appendix B).
    """
    return 0.5 * (log_variance.exp() + mean**2 - 1 - log_variance).sum(dim=-1)


def diagonal_gaussian_log_prob(z: Tensor, mean: Tensor, log_variance: Tensor) -> Tensor:
    """log N(z; mean, diag exp(log_variance)), summed over the last dimension."""
    return -0.5 * (LOG_2PI + log_variance + (z - mean) ** 2 / log_variance.exp()).sum(dim=-1)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I), summed over the last dimension: the VAE prior p(z)."""
    return -0.5 * (LOG_2PI + z**2).sum(dim=-1)


def negative_elbo(log_likelihood: Tensor, kl: Tensor) -> Tensor:
    """-ELBO = E_q[-log p(x|z)] + KL(q(z|x) || p(z)), nats per image averaged over the batch."""
    return (kl - log_likelihood).mean()


def beta_vae_objective(log_likelihood: Tensor, kl: Tensor, beta: float) -> Tensor:
    """-log p(x|z) + beta KL, averaged over the batch (Higgins et al. 2017); beta=1 is the -ELBO."""
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got {beta}")
    return (beta * kl - log_likelihood).mean()


def beta_warmup(step: int, beta: float, warmup_steps: int) -> float:
    """beta * min(1, step / warmup_steps), the linear KL warm-up of Bowman et al. 2016."""
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got {beta}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be non-negative, got {warmup_steps}")
    if warmup_steps == 0:
        return beta
    return beta * min(1.0, max(step, 0) / warmup_steps)


def importance_log_weights(log_likelihood: Tensor, z: Tensor, mean: Tensor, log_variance: Tensor) -> Tensor:
    """log w = log p(x|z) + log p(z) - log q(z|x) at sampled z (Burda et al. 2016, eq. 8)."""
    return log_likelihood + standard_normal_log_prob(z) - diagonal_gaussian_log_prob(z, mean, log_variance)


def importance_weighted_log_likelihood(
    log_weights_for: Callable[[int], Tensor], num_samples: int, chunk_size: int
) -> Tensor:
    """log (1/K) sum_k w_k, the IWAE bound L_K on log p(x) (Burda et al. 2016, eq. 8), per image.

    `log_weights_for(k)` draws k fresh samples z ~ q(z|x) and returns their log weights, shape
    (k, B). The K samples are drawn in chunks of at most `chunk_size` and combined exactly through
    a logsumexp of per-chunk logsumexps, so K=5000 fits in memory. K=1 is a one-sample ELBO.
    """
    if num_samples <= 0:
        raise ValueError(f"num_samples (K) must be positive, got {num_samples}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    chunk_logsumexps = []
    remaining = num_samples
    while remaining > 0:
        k = min(chunk_size, remaining)
        chunk_logsumexps.append(torch.logsumexp(log_weights_for(k), dim=0))
        remaining -= k
    return torch.logsumexp(torch.stack(chunk_logsumexps), dim=0) - math.log(num_samples)


def nats_to_bits_per_dim(nats_per_image: Tensor, num_dims: int) -> Tensor:
    """Negative log-likelihood in nats per image -> bits per dimension: nats / (D ln 2).

    For likelihoods that are probability masses on the data themselves (Bernoulli, discretized
    logistic), so no dequantization constant is added, unlike `bits_per_dim` above for densities.
    """
    if num_dims <= 0:
        raise ValueError(f"num_dims must be positive, got {num_dims}")
    return nats_per_image / (num_dims * math.log(2))


# --- CycleGAN: cycle-consistency and identity terms (Zhu et al. 2017) ---


def cycle_consistency_loss(real: Tensor, reconstructed: Tensor) -> Tensor:
    """L1 cycle loss ||F(G(x)) - x||_1, mean over pixels and batch (Zhu et al. 2017, eq. 2).

    Unweighted: the module multiplies it by lambda (10 in the paper) for each direction.
    """
    return (reconstructed - real).abs().mean()


def identity_loss(real_target: Tensor, mapped_target: Tensor) -> Tensor:
    """L1 identity-mapping loss ||G(y) - y||_1 for y from G's target domain (Zhu et al. 2017, 5.2).

    Unweighted: the paper weighs it by 0.5 x the cycle weight (Taigman et al. 2017).
    """
    return (mapped_target - real_target).abs().mean()

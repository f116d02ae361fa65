"""VAE bounds as pure functions: reparameterization, KL terms, the (beta-)ELBO and the importance-weighted bound."""

import math
from collections.abc import Callable

import torch
from torch import Tensor

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

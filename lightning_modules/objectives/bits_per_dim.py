"""Likelihoods in bits per dimension: flows' dequantized densities and VAEs' probability masses."""

import math

from torch import Tensor

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


def nats_to_bits_per_dim(nats_per_image: Tensor, num_dims: int) -> Tensor:
    """Negative log-likelihood in nats per image -> bits per dimension: nats / (D ln 2).

    For likelihoods that are probability masses on the data themselves (Bernoulli, discretized
    logistic), so no dequantization constant is added, unlike `bits_per_dim` above for densities.
    """
    if num_dims <= 0:
        raise ValueError(f"num_dims must be positive, got {num_dims}")
    return nats_per_image / (num_dims * math.log(2))

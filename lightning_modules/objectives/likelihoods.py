"""Decoder likelihoods p(x|z) for VAEs; each returns log p(x|z) in nats, summed per image.

A decoder outputs `params` of shape (B, P * C, H, W): P parameter maps per image channel, stacked
along dim 1 (for example P=2: all channel means, then all channel log-scales). Data `x` arrives as
the datamodules give it: float in [0, 1], shape (B, C, H, W).

Which one is honest when:
- Bernoulli: a probability mass on binary pixels, so its ELBO bounds log p(x) of binarized data.
  On grey values in (0, 1) it is no longer normalised (Loaiza-Ganem & Cunningham 2019).
- Gaussian: a density on continuous x; its bound is in nats of a density, not of 8-bit images.
- Discretized logistic: a probability mass over the 256 values of 8-bit pixels, so -log p / (D ln 2)
  is a true bits/dim bound with no dequantization constant (Salimans et al. 2017, PixelCNN++).
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _sum_per_image(log_probs: Tensor) -> Tensor:
    return log_probs.flatten(1).sum(dim=1)


def _split_params(params: Tensor, x: Tensor, params_per_channel: int) -> tuple[Tensor, ...]:
    expected = (x.shape[0], params_per_channel * x.shape[1], *x.shape[2:])
    if tuple(params.shape) != expected:
        raise ValueError(
            f"Decoder output has shape {tuple(params.shape)} but this likelihood needs {expected} "
            f"({params_per_channel} parameter map(s) per channel of x, shape {tuple(x.shape)}); "
            "set the decoder's params_per_channel to the likelihood's."
        )
    return params.chunk(params_per_channel, dim=1)


class BernoulliLikelihood(nn.Module):
    """Independent Bernoulli pixels with logits from the decoder; for binarized data."""

    params_per_channel = 1

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        """log p(x|z) = sum_i x_i log sigma(l_i) + (1 - x_i) log(1 - sigma(l_i)), shape (B,)."""
        if x.min() < 0 or x.max() > 1:
            raise ValueError(
                "The Bernoulli likelihood needs data in [0, 1] (binarized pixels), got values in "
                f"[{x.min().item():.4g}, {x.max().item():.4g}]. Check the datamodule's transforms, "
                "or use the Gaussian or discretized logistic likelihood."
            )
        (logits,) = _split_params(params, x, 1)
        return -_sum_per_image(F.binary_cross_entropy_with_logits(logits, x, reduction="none"))

    def mean(self, params: Tensor) -> Tensor:
        """Pixel probabilities, the image shown for reconstructions and samples."""
        return torch.sigmoid(params)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Binary images drawn pixel by pixel."""
        probs = self.mean(params)
        return (torch.rand(probs.shape, generator=generator, device=probs.device) < probs).float()


class GaussianLikelihood(nn.Module):
    """Independent Gaussian pixels: N(x; mu, sigma^2) with sigma fixed or predicted per pixel.

    With `learn_variance=False` the decoder outputs the mean only (params_per_channel=1) and
    `variance` is fixed; with `learn_variance=True` it also outputs a log-variance map (2), which
    is clamped below at `min_log_variance` because a free variance on pixels that sit exactly at 0
    or 1 can shrink without bound and the density diverges.
    """

    def __init__(self, learn_variance: bool = False, variance: float = 1.0, min_log_variance: float = -9.0) -> None:
        super().__init__()
        if variance <= 0:
            raise ValueError(f"variance must be positive, got {variance}")
        self.learn_variance = learn_variance
        self.variance = variance
        self.min_log_variance = min_log_variance
        self.params_per_channel = 2 if learn_variance else 1

    def _mean_and_log_variance(self, params: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        if not self.learn_variance:
            (mean,) = _split_params(params, x, 1)
            return mean, torch.full_like(mean, math.log(self.variance))
        mean, log_variance = _split_params(params, x, 2)
        return mean, log_variance.clamp(min=self.min_log_variance)

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        """log p(x|z) = sum_i -0.5 [log(2 pi sigma_i^2) + (x_i - mu_i)^2 / sigma_i^2], per image."""
        mean, log_variance = self._mean_and_log_variance(params, x)
        log_density = -0.5 * (math.log(2 * math.pi) + log_variance + (x - mean) ** 2 / log_variance.exp())
        return _sum_per_image(log_density)

    def mean(self, params: Tensor) -> Tensor:
        """The predicted mean, clamped to [0, 1] for display."""
        return params.chunk(self.params_per_channel, dim=1)[0].clamp(0, 1)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The mean: pixel noise of a factorised Gaussian adds no structure, only grain."""
        return self.mean(params)


class DiscretizedLogisticLikelihood(nn.Module):
    """Logistic density integrated over each of the 256 bins of 8-bit pixels (PixelCNN++).

    Pixels are rescaled to [-1, 1]; bin k covers [c_k - 1/255, c_k + 1/255] around c_k = 2k/255 - 1,
    and the two end bins extend to -inf and +inf, so the 256 probabilities sum to one.
    The decoder outputs a mean map and a log-scale map per channel (params_per_channel=2).
    """

    params_per_channel = 2
    num_bins = 256

    def __init__(self, min_log_scale: float = -7.0) -> None:
        super().__init__()
        self.min_log_scale = min_log_scale

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        """log P(x|z) = sum_i log[F_i(c_i + 1/255) - F_i(c_i - 1/255)], F_i the logistic CDF."""
        if x.min() < 0 or x.max() > 1:
            raise ValueError(
                f"The discretized logistic likelihood needs data in [0, 1], got values in "
                f"[{x.min().item():.4g}, {x.max().item():.4g}]."
            )
        mean, log_scale = _split_params(params, x, 2)
        inverse_scale = torch.exp(-log_scale.clamp(min=self.min_log_scale))
        bins = torch.round(x * (self.num_bins - 1))
        centre = 2 * bins / (self.num_bins - 1) - 1
        half_width = 1 / (self.num_bins - 1)
        upper = (centre + half_width - mean) * inverse_scale
        lower = (centre - half_width - mean) * inverse_scale
        # log(sigma(a) - sigma(b)) = log sigma(a) + log sigma(-b) + log(1 - exp(b - a)): exact and
        # stable in both tails, so no mid-point approximation is needed and the bound stays true.
        interior = -F.softplus(-upper) - F.softplus(lower) + torch.log(-torch.expm1(lower - upper))
        first_bin = -F.softplus(-upper)  # log sigma(upper): the bin extends to -inf
        last_bin = -F.softplus(lower)  # log(1 - sigma(lower)): the bin extends to +inf
        log_mass = torch.where(bins == 0, first_bin, torch.where(bins == self.num_bins - 1, last_bin, interior))
        return _sum_per_image(log_mass)

    def mean(self, params: Tensor) -> Tensor:
        """The logistic's location mapped back to [0, 1]."""
        location = params.chunk(2, dim=1)[0]
        return ((location + 1) / 2).clamp(0, 1)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw from the logistic, then snap to the 8-bit grid."""
        location, log_scale = params.chunk(2, dim=1)
        uniform = torch.rand(location.shape, generator=generator, device=location.device)
        uniform = uniform.clamp(1e-5, 1 - 1e-5)
        scale = log_scale.clamp(min=self.min_log_scale).exp()
        draw = location + scale * (torch.log(uniform) - torch.log1p(-uniform))
        pixels = ((draw.clamp(-1, 1) + 1) / 2 * (self.num_bins - 1)).round()
        return pixels / (self.num_bins - 1)

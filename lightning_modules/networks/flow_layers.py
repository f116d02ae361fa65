"""Invertible layers for normalizing flows (RealNVP, Dinh et al. 2017; Glow, Kingma 2018).

Every layer maps x -> y with `forward(x) -> (y, logdet)` where `logdet` has shape (B,) and is
log|det dy/dx| per sample, and undoes it with `inverse(y) -> x`. Inputs are images (B, C, H, W).
`Split` is the one exception in shape: it returns the kept half and the factored-out latent.
"""

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_modules.networks.checks import check_positive

# --- Preprocessing: 8-bit dequantization and the logit transform ---


def check_quantized(x: Tensor, num_bits: int = 8) -> None:
    """Raise unless x is `num_bits`-bit data scaled to [0, 1], i.e. x * (2^b - 1) is integer."""
    levels = 2**num_bits - 1
    if x.numel() == 0:
        return
    low, high = x.min().item(), x.max().item()
    if low < 0 or high > 1:
        raise ValueError(
            f"Flows expect images in [0, 1] (the datamodule convention); got values in "
            f"[{low:.4g}, {high:.4g}]. Remove any normalisation (mean/std) from the data transform."
        )
    scaled = x.double() * levels
    off_grid = (scaled - scaled.round()).abs().max().item()
    if off_grid > 1e-3:
        raise ValueError(
            f"Flows score {num_bits}-bit data, but these images are not on the {num_bits}-bit grid "
            f"(round(x*{levels}) differs from x*{levels} by up to {off_grid:.3g}); resizing with "
            f"antialias or other filtering does that. Set num_bits to the data's true depth or "
            f"quantize the images in the transform."
        )


def dequantize(
    x: Tensor, num_bits: int = 8, generator: torch.Generator | None = None, noise: Tensor | None = None
) -> Tensor:
    """Uniform dequantization: u = (round(x * (2^b - 1)) + U[0, 1)) / 2^b, a point in [0, 1)^D.

    The continuous density on [0, 1)^D then bounds the discrete likelihood (Theis et al. 2016),
    which is why `bits_per_dim` adds exactly `num_bits`. The U[0, 1) draw is `noise` when given
    (evaluation passes noise drawn per image), else drawn from `generator`, else fresh.
    """
    levels = 2**num_bits
    if noise is None and generator is None:
        noise = torch.rand_like(x)
    elif noise is None:  # a CPU generator makes the noise, and so evaluation numbers, device-independent
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype)
    if noise.shape != x.shape:
        raise ValueError(f"dequantization noise of shape {tuple(noise.shape)} for images of shape {tuple(x.shape)}")
    return (torch.round(x * (levels - 1)) + noise.to(x.device, x.dtype)) / levels


def quantize(u: Tensor, num_bits: int = 8) -> Tensor:
    """Inverse of `dequantize`: the bin floor(u * 2^b), rescaled to [0, 1] like the data."""
    levels = 2**num_bits
    return torch.floor(u * levels).clamp(0, levels - 1) / (levels - 1)


class LogitTransform(nn.Module):
    """y = logit(alpha + (1 - 2 alpha) x) for x in [0, 1] (RealNVP, section 4.1).

    log|dy/dx| per dimension = log(1 - 2 alpha) - log(s) - log(1 - s), with s = alpha + (1-2a) x.
    """

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        if not 0 < alpha < 0.5:
            raise ValueError(f"logit alpha must lie in (0, 0.5) so logit stays finite on [0, 1]; got {alpha}")
        self.alpha = alpha

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(s) - torch.log1p(-s)
        log_jacobian = math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s)
        return y, log_jacobian.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        return (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)


class CenterShift(nn.Module):
    """y = x - 0.5, Glow's input shift from [0, 1] to [-0.5, 0.5] (log-det 0)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x - 0.5, x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y + 0.5


# --- Normalisation and mixing ---


class ActNorm(nn.Module):
    """Per-channel affine y = (x + bias) * exp(log_scale) with data-dependent init (Glow, 3.1).

    The first forward in training mode sets bias and log_scale so that the batch has zero mean
    and unit variance per channel. The `initialized` flag is a buffer, so it is saved in
    checkpoints and a reloaded model is not initialised again. When torch.distributed is
    initialised the batch statistics are averaged over ranks, so every rank gets the same values.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        check_positive(num_channels=num_channels)
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        # uint8 rather than bool: every collective backend (gloo, nccl) broadcasts it.
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set bias and log_scale from the statistics of x, averaged over ranks under DDP."""
        moments = torch.stack([x.mean(dim=(0, 2, 3)), (x * x).mean(dim=(0, 2, 3))])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(moments, op=dist.ReduceOp.SUM)
            moments /= dist.get_world_size()
        mean, mean_square = moments
        std = (mean_square - mean * mean).clamp_min(0).sqrt()
        self.bias.copy_(-mean.view_as(self.bias))
        self.log_scale.copy_(-torch.log(std + self.eps).view_as(self.log_scale))
        self.initialized.fill_(1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not self.initialized:
            self.initialize(x)
        y = (x + self.bias) * torch.exp(self.log_scale)
        logdet = x.shape[2] * x.shape[3] * self.log_scale.sum()
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvertibleConv1x1(nn.Module):
    """Invertible 1x1 convolution W = P L (U + diag(sign * exp(log_s))) in LU form (Glow, 3.2).

    The LU form makes log|det W| = sum(log_s), O(C) instead of O(C^3). P and the signs are fixed.
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        check_positive(num_channels=num_channels)
        rotation = torch.linalg.qr(torch.randn(num_channels, num_channels))[0]
        permutation, lower, upper = torch.linalg.lu(rotation)
        diagonal = torch.diagonal(upper)
        self.register_buffer("permutation", permutation)
        self.register_buffer("sign_s", torch.sign(diagonal))
        self.register_buffer("lower_mask", torch.tril(torch.ones_like(lower), -1))
        self.register_buffer("identity", torch.eye(num_channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(diagonal.abs()))

    def weight(self) -> Tensor:
        """The C x C mixing matrix assembled from its LU factors."""
        lower = self.lower * self.lower_mask + self.identity
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.permutation @ lower @ upper

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        weight = self.weight()
        y = F.conv2d(x, weight.view(*weight.shape, 1, 1))
        logdet = x.shape[2] * x.shape[3] * self.log_s.sum()
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        inverse_weight = torch.linalg.inv(self.weight())
        return F.conv2d(y, inverse_weight.view(*inverse_weight.shape, 1, 1))


# --- Coupling layers ---


def coupling_network(in_channels: int, out_channels: int, hidden_channels: int) -> nn.Sequential:
    """conv3x3 - ReLU - conv1x1 - ReLU - conv3x3, the last zero-initialised (Glow, 3.3).

    Zero output means the coupling starts as the identity map, which keeps a deep flow stable.
    """
    last = nn.Conv2d(hidden_channels, out_channels, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden_channels, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden_channels, hidden_channels, 1),
        nn.ReLU(),
        last,
    )


def checkerboard_mask(height: int, width: int, parity: int, like: Tensor) -> Tensor:
    """(1, 1, H, W) mask that is 1 where (i + j + parity) is even: the conditioning pixels."""
    rows = torch.arange(height, device=like.device).view(-1, 1)
    cols = torch.arange(width, device=like.device).view(1, -1)
    return ((rows + cols + parity) % 2 == 0).to(like.dtype).view(1, 1, height, width)


class _Coupling(nn.Module):
    """Shared masking: half of x (the conditioning part) parameterises a map of the other half."""

    MASKS = ("checkerboard", "channel")

    def __init__(self, num_channels: int, hidden_channels: int, mask: str, parity: int, params: int) -> None:
        super().__init__()
        if mask not in self.MASKS:
            raise ValueError(f"Unknown coupling mask '{mask}'. Available: {', '.join(self.MASKS)}")
        if mask == "channel" and num_channels < 2:
            raise ValueError(
                f"a channel mask needs at least 2 channels, got {num_channels}; "
                "use mask='checkerboard' or squeeze first"
            )
        check_positive(hidden_channels=hidden_channels)
        self.mask, self.parity, self.params = mask, parity % 2, params
        if mask == "checkerboard":
            self.in_channels, self.out_channels = num_channels, num_channels
        else:
            half = num_channels // 2
            self.in_channels = half if self.parity == 0 else num_channels - half
            self.out_channels = num_channels - self.in_channels
        self.net = coupling_network(self.in_channels, params * self.out_channels, hidden_channels)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """(conditioning input, transformed part, checkerboard mask or None)."""
        if self.mask == "checkerboard":
            mask = checkerboard_mask(x.shape[2], x.shape[3], self.parity, x)
            return x * mask, x, mask
        first, second = x[:, : x.shape[1] // 2], x[:, x.shape[1] // 2 :]
        return (first, second, None) if self.parity == 0 else (second, first, None)

    def _merge(self, conditioning: Tensor, changed: Tensor, mask: Tensor | None) -> Tensor:
        if mask is not None:
            return conditioning + (1 - mask) * changed
        parts = (conditioning, changed) if self.parity == 0 else (changed, conditioning)
        return torch.cat(parts, dim=1)

    def _parameters_of(self, conditioning: Tensor) -> tuple[Tensor, ...]:
        return self.net(conditioning).chunk(self.params, dim=1)


class AffineCoupling(_Coupling):
    """x_b -> x_b * scale(x_a) + shift(x_a) with a bounded scale (RealNVP 3.3; Glow 3.3).

    scale="tanh": log scale = w * tanh(h), w a learned per-channel factor (RealNVP).
    scale="sigmoid": scale = sigmoid(h + 2) / sigmoid(2), Glow's sigmoid rescaled so that a
    zero-initialised network gives scale 1 (the identity); bounded above by 1.14.
    """

    SCALES = ("tanh", "sigmoid")

    def __init__(
        self,
        num_channels: int,
        hidden_channels: int = 64,
        mask: str = "channel",
        parity: int = 0,
        scale: str = "tanh",
    ) -> None:
        super().__init__(num_channels, hidden_channels, mask, parity, params=2)
        if scale not in self.SCALES:
            available = ", ".join(self.SCALES)
            raise ValueError(f"Unknown coupling scale '{scale}'. Available: {available}")
        self.scale = scale
        if scale == "tanh":
            self.tanh_factor = nn.Parameter(torch.ones(1, self.out_channels, 1, 1))

    def _log_scale_and_shift(self, conditioning: Tensor) -> tuple[Tensor, Tensor]:
        raw, shift = self._parameters_of(conditioning)
        if self.scale == "tanh":
            return self.tanh_factor * torch.tanh(raw), shift
        return F.logsigmoid(raw + 2.0) + math.log1p(math.exp(-2.0)), shift

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        conditioning, changed, mask = self._split(x)
        log_scale, shift = self._log_scale_and_shift(conditioning)
        if mask is not None:
            log_scale = log_scale * (1 - mask)
        y = self._merge(conditioning, changed * torch.exp(log_scale) + shift, mask)
        return y, log_scale.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        conditioning, changed, mask = self._split(y)
        log_scale, shift = self._log_scale_and_shift(conditioning)
        return self._merge(conditioning, (changed - shift) * torch.exp(-log_scale), mask)


class AdditiveCoupling(_Coupling):
    """x_b -> x_b + shift(x_a), volume preserving (NICE, Dinh et al. 2015; Glow's option)."""

    def __init__(self, num_channels: int, hidden_channels: int = 64, mask: str = "channel", parity: int = 0) -> None:
        super().__init__(num_channels, hidden_channels, mask, parity, params=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        conditioning, changed, mask = self._split(x)
        (shift,) = self._parameters_of(conditioning)
        return self._merge(conditioning, changed + shift, mask), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        conditioning, changed, mask = self._split(y)
        (shift,) = self._parameters_of(conditioning)
        return self._merge(conditioning, changed - shift, mask)


# --- Multi-scale architecture ---


class Squeeze(nn.Module):
    """Space-to-depth (B, C, H, W) -> (B, 4C, H/2, W/2), 2x2 patches to channels (RealNVP 3.6)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze needs even height and width, got {h}x{w}")
        y = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return y.reshape(b, 4 * c, h // 2, w // 2), x.new_zeros(b)

    def inverse(self, y: Tensor) -> Tensor:
        b, c, h, w = y.shape
        x = y.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(b, c // 4, 2 * h, 2 * w)


class Split(nn.Module):
    """Factor out half the channels as a latent (RealNVP 3.6; Glow's split with learned prior).

    forward(x) -> ((kept, z), logdet). With `learned_prior`, the factored-out half x_b has prior
    N(mu(kept), sigma(kept)^2) (Glow); it is written as the affine map z = (x_b - mu) / sigma so
    that z is standard normal and the prior's -sum(log sigma) is this layer's log-det. Sampling
    with temperature T then draws z ~ N(0, T^2), i.e. sigma scaled by T as in Glow.
    Without it, z = x_b under a standard normal prior (RealNVP), log-det 0.
    """

    def __init__(self, num_channels: int, learned_prior: bool = True, hidden_channels: int = 0):
        super().__init__()
        if num_channels < 2:
            raise ValueError(f"Split needs at least 2 channels, got {num_channels}")
        self.kept_channels = num_channels // 2
        self.latent_channels = num_channels - self.kept_channels
        self.learned_prior = learned_prior
        if learned_prior:
            # Glow's prior net is one zero-initialised 3x3 conv; hidden_channels > 0 adds a layer.
            if hidden_channels > 0:
                self.prior = coupling_network(self.kept_channels, 2 * self.latent_channels, hidden_channels)
            else:
                self.prior = nn.Conv2d(self.kept_channels, 2 * self.latent_channels, 3, padding=1)
                nn.init.zeros_(self.prior.weight)
                nn.init.zeros_(self.prior.bias)

    def forward(self, x: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        kept, factored = x[:, : self.kept_channels], x[:, self.kept_channels :]
        if not self.learned_prior:
            return (kept, factored), x.new_zeros(x.shape[0])
        mean, log_std = self.prior(kept).chunk(2, dim=1)
        z = (factored - mean) * torch.exp(-log_std)
        return (kept, z), -log_std.flatten(1).sum(1)

    def inverse(self, kept: Tensor, z: Tensor) -> Tensor:
        if self.learned_prior:
            mean, log_std = self.prior(kept).chunk(2, dim=1)
            z = z * torch.exp(log_std) + mean
        return torch.cat([kept, z], dim=1)

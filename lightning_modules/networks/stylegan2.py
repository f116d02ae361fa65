"""StyleGAN2 generator and discriminator (Karras et al. 2020), sized from the resolution.

Generator: a mapping network z -> w with a tracked mean of w (for the truncation trick), and a
skip-connection synthesis network from a learned constant 4x4 input, one toRGB per resolution.
Discriminator: residual blocks (or plain ones, the "orig" architecture StyleGAN2-ADA uses for
CIFAR-10) down to 4x4, minibatch standard deviation, and a projection term for class labels
(Miyato & Koyama 2018). Channels at resolution r: min(channel_base // r, channel_max).
"""

import math
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_modules.networks.checks import check_positive
from lightning_modules.networks.stylegan2_layers import (
    EqualizedConv2d,
    EqualizedLinear,
    StyledConv,
    ToRGB,
    minibatch_standard_deviation,
)

VALID_RESOLUTIONS = tuple(2**k for k in range(2, 11))


def resolution_log2(image_size: int) -> int:
    """log2 of the resolution; a clear error for a size the 4x4 -> 2x synthesis cannot reach."""
    if image_size < 4 or image_size & (image_size - 1):
        sizes = ", ".join(str(size) for size in VALID_RESOLUTIONS)
        raise ValueError(
            f"StyleGAN2 needs a square image size that is a power of two >= 4 ({sizes}, ...); got {image_size}. "
            "Resize the data to one (e.g. data.image_size=32 for 28x28 MNIST)."
        )
    return int(math.log2(image_size))


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at `resolution`: min(channel_base // resolution, channel_max), at least 1."""
    return max(1, min(channel_base // resolution, channel_max))


def check_truncation_psi(psi: float) -> None:
    if not 0.0 <= psi <= 1.0:
        raise ValueError(f"truncation psi must lie in [0, 1] (1: no truncation, 0: the mean w), got {psi}")


def normalize_second_moment(x: Tensor) -> Tensor:
    """x / sqrt(mean(x^2) + 1e-8) over the features (StyleGAN's pixel norm of z)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class MappingNetwork(nn.Module):
    """z (and a class label) -> w through `num_layers` equalized FC layers at a reduced learning rate.

    `w_mean` tracks the mean w during training (`update_mean=True`); the truncation trick pulls w
    towards it: w' = w_mean + psi (w - w_mean).
    """

    def __init__(
        self,
        latent_dim: int = 512,
        w_dim: int = 512,
        num_layers: int = 8,
        lr_multiplier: float = 0.01,
        num_classes: int | None = None,
        w_mean_beta: float = 0.995,
    ) -> None:
        super().__init__()
        for name, value in {"latent_dim": latent_dim, "w_dim": w_dim, "num_layers": num_layers}.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.latent_dim, self.w_dim, self.num_classes, self.w_mean_beta = latent_dim, w_dim, num_classes, w_mean_beta
        # Labels enter as an embedding beside z, each normalised (StyleGAN2-ADA's conditional mapping).
        self.embed = EqualizedLinear(num_classes, w_dim) if num_classes is not None else None
        in_features = latent_dim + (w_dim if num_classes is not None else 0)
        features = [in_features] + [w_dim] * num_layers
        self.layers = nn.Sequential(
            *[EqualizedLinear(a, b, lr_multiplier=lr_multiplier, activation=True) for a, b in pairwise(features)]
        )
        self.register_buffer("w_mean", torch.zeros(w_dim))

    def forward(self, z: Tensor, labels: Tensor | None = None, psi: float = 1.0, update_mean: bool = False) -> Tensor:
        check_truncation_psi(psi)
        x = normalize_second_moment(z)
        if self.embed is not None:
            if labels is None:
                raise ValueError("This generator is conditional: pass class labels")
            label_features = self.embed(F.one_hot(labels, self.num_classes).to(z.dtype))
            x = torch.cat([x, normalize_second_moment(label_features)], dim=1)
        w = self.layers(x)
        if update_mean:
            self.w_mean.copy_(w.detach().float().mean(dim=0).lerp(self.w_mean, self.w_mean_beta))
        return self.truncate(w, psi)

    def truncate(self, w: Tensor, psi: float) -> Tensor:
        """The truncation trick: w_mean + psi (w - w_mean); psi = 1 leaves w as it is."""
        check_truncation_psi(psi)
        return w if psi == 1.0 else self.w_mean.to(w.dtype).lerp(w, psi)


class SynthesisNetwork(nn.Module):
    """w per layer, shape (B, num_ws, w_dim) -> images (B, C, S, S), from a constant 4x4 input."""

    def __init__(
        self,
        w_dim: int,
        image_size: int,
        channels: int,
        channel_base: int,
        channel_max: int,
        affine_lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        log2 = resolution_log2(image_size)
        width = [channels_at(2**k, channel_base, channel_max) for k in range(2, log2 + 1)]
        lr = affine_lr_multiplier
        self.constant = nn.Parameter(torch.randn(1, width[0], 4, 4))
        self.first = StyledConv(width[0], width[0], w_dim, affine_lr_multiplier=lr)
        self.first_rgb = ToRGB(width[0], channels, w_dim, affine_lr_multiplier=lr)
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [
                    StyledConv(a, b, w_dim, up=True, affine_lr_multiplier=lr),
                    StyledConv(b, b, w_dim, affine_lr_multiplier=lr),
                    ToRGB(b, channels, w_dim, affine_lr_multiplier=lr),
                ]
            )
            for a, b in pairwise(width)
        )
        # Each block's toRGB shares its w with the next block's first conv (the official indexing).
        self.num_ws = 2 * log2 - 2

    def forward(self, ws: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x = self.constant.expand(len(ws), -1, -1, -1).to(ws.dtype)
        x = self.first(x, ws[:, 0], generator)
        image = self.first_rgb(x, ws[:, 1])
        for index, (conv_up, conv, to_rgb) in enumerate(self.blocks):
            x = conv_up(x, ws[:, 2 * index + 1], generator)
            x = conv(x, ws[:, 2 * index + 2], generator)
            image = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
            image = image + to_rgb(x, ws[:, 2 * index + 3])
        return image


class StyleGAN2Generator(nn.Module):
    """z (B, latent_dim) and labels -> images in about [-1, 1] (not squashed, as in the paper), shape (B, C, S, S).

    `affine_lr_multiplier` slows (< 1) or speeds up the style affines' learning; 1 is the paper.
    """

    def __init__(
        self,
        latent_dim: int = 512,
        w_dim: int = 512,
        mapping_layers: int = 8,
        mapping_lr_multiplier: float = 0.01,
        channels: int = 3,
        image_size: int = 32,
        channel_base: int = 16384,
        channel_max: int = 512,
        num_classes: int | None = None,
        affine_lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        if num_classes is not None and num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        check_positive(affine_lr_multiplier=affine_lr_multiplier)
        self.synthesis = SynthesisNetwork(w_dim, image_size, channels, channel_base, channel_max, affine_lr_multiplier)
        self.mapping = MappingNetwork(latent_dim, w_dim, mapping_layers, mapping_lr_multiplier, num_classes)
        self.latent_dim, self.num_classes, self.num_ws = latent_dim, num_classes, self.synthesis.num_ws

    def broadcast(self, w: Tensor) -> Tensor:
        """(B, w_dim) -> (B, num_ws, w_dim): the same w for every layer (no style mixing)."""
        return w[:, None].expand(-1, self.num_ws, -1)

    def forward(
        self,
        z: Tensor,
        labels: Tensor | None = None,
        psi: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return self.synthesis(self.broadcast(self.mapping(z, labels, psi)), generator)


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convs, the second halving the size; residual blocks add a 1x1 skip and scale by sqrt(1/2)."""

    def __init__(self, in_channels: int, out_channels: int, residual: bool) -> None:
        super().__init__()
        gain = math.sqrt(0.5) if residual else 1.0
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, activation=True)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, activation=True, down=True)
        self.skip = (
            EqualizedConv2d(in_channels, out_channels, 1, bias=False, down=True, gain=gain) if residual else None
        )
        self.gain = gain

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv1(self.conv0(x)) * self.gain
        return y + self.skip(x) if self.skip is not None else y


class StyleGAN2Discriminator(nn.Module):
    """Images (B, C, S, S) and labels -> one logit per image, shape (B,)."""

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 32,
        channel_base: int = 16384,
        channel_max: int = 512,
        residual: bool = True,
        minibatch_group_size: int = 4,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes is not None and num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        log2 = resolution_log2(image_size)
        width = [channels_at(2**k, channel_base, channel_max) for k in range(log2, 1, -1)]  # S, S/2, ..., 4
        self.from_rgb = EqualizedConv2d(channels, width[0], 1, activation=True)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(a, b, residual) for a, b in pairwise(width)])
        self.minibatch_group_size = minibatch_group_size
        self.conv = EqualizedConv2d(width[-1] + 1, width[-1], 3, activation=True)
        self.fc = EqualizedLinear(width[-1] * 16, width[-1], activation=True)
        self.out = EqualizedLinear(width[-1], 1)
        self.num_classes = num_classes
        self.class_embedding = nn.Embedding(num_classes, width[-1]) if num_classes is not None else None

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.blocks(self.from_rgb(images))
        x = self.conv(minibatch_standard_deviation(x, self.minibatch_group_size))
        features = self.fc(x.flatten(1))
        logits = self.out(features).flatten()
        if self.class_embedding is not None:
            if labels is None:
                raise ValueError("This discriminator is conditional: pass class labels")
            # Projection (Miyato & Koyama 2018), scaled like StyleGAN2-ADA's 1/sqrt(cmap_dim).
            projection = (self.class_embedding(labels) * features).sum(dim=1) / math.sqrt(features.shape[1])
            logits = logits + projection
        return logits

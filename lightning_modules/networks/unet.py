"""The U-Net denoiser shared by DDPM and flow matching (Ho et al. 2020, appendix B).

Residual blocks (GroupNorm, SiLU, 3x3 convolutions, dropout) take a sinusoidal embedding of the
time step, to which a learned class embedding is added for class-conditional models; single-head
self-attention runs at the feature resolutions listed in `attention_resolutions` (16x16 in the
paper). Each entry of `channel_multipliers` is one resolution level, so the image is halved
len(channel_multipliers) - 1 times. The network predicts a tensor of the input's shape (noise,
clean image, v or a velocity: the objective decides what it means). Sampling and losses live in
objectives/ and samplers/, not here.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoidal_embedding(time: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """(B,) times -> (B, dim) sines and cosines at geometric frequencies (Vaswani et al. 2017).

    Times may be integer steps (DDPM) or scaled continuous times (flow matching).
    """
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=time.device) / half)
    angles = time.float()[:, None] * frequencies[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    if channels % groups:
        raise ValueError(
            f"GroupNorm with {groups} groups cannot split {channels} channels; make base_channels times "
            f"every channel multiplier a multiple of norm_groups ({groups}), or change norm_groups."
        )
    return nn.GroupNorm(groups, channels)


class ResidualBlock(nn.Module):
    """x + conv(drop(silu(norm(conv(silu(norm(x))) + proj(embedding))))), with a 1x1 skip when widths differ."""

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embedding = nn.Linear(embedding_dim, out_channels)
        self.norm2 = group_norm(out_channels, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.embedding(F.silu(embedding))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over all pixels, added to its input."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        query, key, value = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)
        attended = F.scaled_dot_product_attention(query, key, value)
        return x + self.out(attended.transpose(1, 2).reshape(batch, channels, height, width))


class Level(nn.Module):
    """Residual blocks at one resolution, each followed by attention where the level has it."""

    def __init__(self, widths: list[tuple[int, int]], embedding_dim: int, dropout: float, groups: int, attention: bool):
        super().__init__()
        self.blocks = nn.ModuleList(ResidualBlock(i, o, embedding_dim, dropout, groups) for i, o in widths)
        self.attentions = nn.ModuleList(SelfAttention(o, groups) if attention else nn.Identity() for _, o in widths)


def check_halvable(image_size: int, num_levels: int) -> None:
    """Every down-sampling must halve an even size, or the up path cannot mirror it."""
    size, halvings = image_size, 0
    while halvings < num_levels - 1 and size % 2 == 0:
        size, halvings = size // 2, halvings + 1
    if halvings < num_levels - 1:
        raise ValueError(
            f"The U-Net cannot halve image_size={image_size} {num_levels - 1} times (channel_multipliers has "
            f"{num_levels} levels; it reaches the odd size {size} after {halvings}). Use at most "
            f"{halvings + 1} channel multipliers, or an image size divisible by {2 ** (num_levels - 1)}."
        )


class UNet(nn.Module):
    """Denoiser network: (x_t, time, labels) -> a tensor shaped like x_t."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        base_channels: int = 64,
        channel_multipliers: tuple[int, ...] = (1, 2, 2),
        num_res_blocks: int = 2,
        attention_resolutions: tuple[int, ...] = (16,),
        dropout: float = 0.1,
        num_classes: int | None = None,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        multipliers = [int(m) for m in channel_multipliers]
        if not multipliers or min(multipliers) < 1 or num_res_blocks < 1 or base_channels < 1:
            raise ValueError(
                f"channel_multipliers must be a non-empty list of positive integers and num_res_blocks, "
                f"base_channels positive; got {multipliers}, {num_res_blocks}, {base_channels}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be positive or null, got {num_classes}")
        check_halvable(image_size, len(multipliers))
        self.image_shape = (in_channels, image_size, image_size)
        self.num_classes = num_classes
        self.base_channels = base_channels
        embedding_dim = 4 * base_channels
        self.time_embedding = nn.Sequential(
            nn.Linear(base_channels, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim)
        )
        # Index num_classes is the "no label" token that classifier-free guidance trains and samples with.
        self.class_embedding = nn.Embedding(num_classes + 1, embedding_dim) if num_classes is not None else None
        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down_levels, self.downsamples, skip_widths = self._build_down(
            multipliers, num_res_blocks, image_size, set(attention_resolutions), dropout, norm_groups, embedding_dim
        )
        bottom = base_channels * multipliers[-1]
        self.middle = Level([(bottom, bottom), (bottom, bottom)], embedding_dim, dropout, norm_groups, False)
        self.middle_attention = SelfAttention(bottom, norm_groups)
        self.up_levels, self.upsamples = self._build_up(
            multipliers,
            num_res_blocks,
            image_size,
            set(attention_resolutions),
            dropout,
            norm_groups,
            embedding_dim,
            skip_widths,
        )
        self.head = nn.Sequential(group_norm(base_channels, norm_groups), nn.SiLU())
        self.out = nn.Conv2d(base_channels, in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def _build_down(self, multipliers, num_res_blocks, image_size, attention_at, dropout, groups, embedding_dim):
        levels, downsamples, skip_widths = nn.ModuleList(), nn.ModuleList(), [self.base_channels]
        width, size = self.base_channels, image_size
        for index, multiplier in enumerate(multipliers):
            out = self.base_channels * multiplier
            widths = [(width if b == 0 else out, out) for b in range(num_res_blocks)]
            levels.append(Level(widths, embedding_dim, dropout, groups, size in attention_at))
            skip_widths += [out] * num_res_blocks
            width = out
            if index < len(multipliers) - 1:
                downsamples.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skip_widths.append(width)
                size //= 2
        return levels, downsamples, skip_widths

    def _build_up(self, multipliers, num_res_blocks, image_size, attention_at, dropout, groups, embedding_dim, skips):
        levels, upsamples = nn.ModuleList(), nn.ModuleList()
        skips = list(skips)
        width = self.base_channels * multipliers[-1]
        size = image_size // 2 ** (len(multipliers) - 1)
        for index, multiplier in reversed(list(enumerate(multipliers))):
            out = self.base_channels * multiplier
            widths = []
            for _ in range(num_res_blocks + 1):
                widths.append((width + skips.pop(), out))
                width = out
            levels.append(Level(widths, embedding_dim, dropout, groups, size in attention_at))
            if index > 0:
                upsamples.append(nn.Conv2d(width, width, 3, padding=1))
                size *= 2
        return levels, upsamples

    def embed(self, time: Tensor, labels: Tensor | None) -> Tensor:
        """Time embedding, plus the class embedding (the "no label" token when labels is None)."""
        embedding = self.time_embedding(sinusoidal_embedding(time, self.base_channels))
        if self.class_embedding is None:
            if labels is not None:
                raise ValueError("This U-Net is unconditional (num_classes is null) but was given labels.")
            return embedding
        if labels is None:
            labels = torch.full((len(time),), self.num_classes, device=time.device, dtype=torch.long)
        return embedding + self.class_embedding(labels)

    def forward(self, x: Tensor, time: Tensor, labels: Tensor | None = None) -> Tensor:
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"The U-Net was built for images of shape {self.image_shape} but got {tuple(x.shape[1:])}; "
                "set in_channels and image_size from the data config."
            )
        embedding = self.embed(time.expand(len(x)) if time.dim() == 0 else time, labels)
        h = self.stem(x)
        skips = [h]
        for index, level in enumerate(self.down_levels):
            for block, attention in zip(level.blocks, level.attentions, strict=True):
                h = attention(block(h, embedding))
                skips.append(h)
            if index < len(self.downsamples):
                h = self.downsamples[index](h)
                skips.append(h)
        h = self.middle.blocks[0](h, embedding)
        h = self.middle.blocks[1](self.middle_attention(h), embedding)
        for index, level in enumerate(self.up_levels):
            for block, attention in zip(level.blocks, level.attentions, strict=True):
                h = attention(block(torch.cat([h, skips.pop()], dim=1), embedding))
            if index < len(self.upsamples):
                h = self.upsamples[index](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(self.head(h))

"""Whole normalizing flows with a multi-scale architecture: RealNVP and Glow.

Both map dequantized images x in [0, 1)^D to a list of latents, each standard normal a priori:
`forward(x) -> (zs, logdet)` with log p(x) = sum_i log N(zs[i]; 0, I) + logdet, a density on
[0, 1)^D (every Jacobian term included, the logit transform's too), so
`losses.bits_per_dim(model.log_prob(x), model.num_dims)` is the 8-bit bits/dim.
"""

import torch
from torch import Tensor, nn

from lightning_modules.networks.flow_layers import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    CenterShift,
    InvertibleConv1x1,
    LogitTransform,
    Split,
    Squeeze,
)
from lightning_modules.objectives.elbo import standard_normal_log_prob

Shape = tuple[int, int, int]


def latent_log_prior(zs: list[Tensor]) -> Tensor:
    """Per-image log N(z; 0, I) of every latent, summed: the base density of a multi-scale flow."""
    return sum(standard_normal_log_prob(z.flatten(1)) for z in zs)


def _image_shape(in_channels: int, image_size: int | tuple[int, int]) -> Shape:
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    if in_channels <= 0 or height <= 0 or width <= 0:
        raise ValueError(f"in_channels and image_size must be positive, got {in_channels} and {image_size}")
    return in_channels, height, width


def _check_squeezable(model: str, shape: Shape, squeezes: int, setting: str) -> None:
    """Each squeeze halves height and width, so both must be divisible by 2^squeezes."""
    _, height, width = shape
    factor = 2**squeezes
    if height % factor or width % factor:
        raise ValueError(
            f"{model} with {setting} squeezes the image {squeezes} time(s), so height and width "
            f"must be divisible by {factor}; got {height}x{width}. Lower {setting.split('=')[0]} "
            f"or resize/pad the images (e.g. 28x28 MNIST allows at most 2 squeezes, 32x32 five)."
        )


class MultiScaleFlow(nn.Module):
    """Preprocessing, then stages of invertible layers, each but the last ending in a `Split`."""

    def __init__(self, image_shape: Shape, logit_alpha: float | None) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.num_dims = image_shape[0] * image_shape[1] * image_shape[2]
        self.preprocess = LogitTransform(logit_alpha) if logit_alpha is not None else CenterShift()
        self.stages = nn.ModuleList()
        self.splits = nn.ModuleList()
        self.latent_shapes: list[Shape] = []

    def _add_split(self, shape: Shape, learned_prior: bool) -> Shape:
        """Append a Split after the current stage; return the shape that flows on."""
        channels, height, width = shape
        split = Split(channels, learned_prior=learned_prior)
        self.splits.append(split)
        self.latent_shapes.append((split.latent_channels, height, width))
        return split.kept_channels, height, width

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        y, logdet = self.preprocess(x)
        zs = []
        for index, stage in enumerate(self.stages):
            for layer in stage:
                y, layer_logdet = layer(y)
                logdet = logdet + layer_logdet
            if index < len(self.splits):
                (y, z), split_logdet = self.splits[index](y)
                zs.append(z)
                logdet = logdet + split_logdet
        zs.append(y)
        return zs, logdet

    def inverse(self, zs: list[Tensor]) -> Tensor:
        y = zs[-1]
        for index in reversed(range(len(self.stages))):
            if index < len(self.splits):
                y = self.splits[index].inverse(y, zs[index])
            for layer in reversed(self.stages[index]):
                y = layer.inverse(y)
        return self.preprocess.inverse(y)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats per image for x in [0, 1)^D: prior of every latent plus all log-dets."""
        zs, logdet = self(x)
        return latent_log_prior(zs) + logdet

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """n images in [0, 1]; latents drawn from N(0, T^2 I) on CPU with `generator`."""
        if temperature < 0:
            raise ValueError(f"temperature must be non-negative, got {temperature}")
        reference = next(self.parameters())
        zs = [
            (torch.randn((n, *shape), generator=generator) * temperature).to(reference) for shape in self.latent_shapes
        ]
        return self.inverse(zs).clamp(0, 1)


class RealNVP(MultiScaleFlow):
    """RealNVP (Dinh et al. 2017): per scale 3 checkerboard couplings, squeeze, 3 channel
    couplings, factor out half; the last scale has 4 checkerboard couplings.

    Affine couplings with a tanh-bounded log-scale, logit preprocessing with alpha (0.05 in the
    paper). `actnorm=True` puts ActNorm after each coupling in place of the paper's batch norm,
    so the density does not depend on the batch.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int | tuple[int, int] = 28,
        num_scales: int = 2,
        hidden_channels: int = 64,
        logit_alpha: float | None = 0.05,
        actnorm: bool = True,
    ) -> None:
        shape = _image_shape(in_channels, image_size)
        super().__init__(shape, logit_alpha)
        if num_scales < 1:
            raise ValueError(f"num_scales must be at least 1, got {num_scales}")
        if hidden_channels <= 0:
            raise ValueError(f"hidden_channels must be positive, got {hidden_channels}")
        _check_squeezable("RealNVP", shape, num_scales - 1, f"num_scales={num_scales}")
        self.hidden_channels, self.actnorm = hidden_channels, actnorm
        for scale in range(num_scales):
            stage = nn.ModuleList()
            last = scale == num_scales - 1
            self._add_couplings(stage, shape, "checkerboard", 4 if last else 3)
            if not last:
                stage.append(Squeeze())
                shape = (shape[0] * 4, shape[1] // 2, shape[2] // 2)
                self._add_couplings(stage, shape, "channel", 3)
            self.stages.append(stage)
            if not last:
                shape = self._add_split(shape, learned_prior=False)
        self.latent_shapes.append(shape)

    def _add_couplings(self, stage: nn.ModuleList, shape: Shape, mask: str, count: int) -> None:
        for parity in range(count):
            stage.append(AffineCoupling(shape[0], self.hidden_channels, mask, parity % 2, scale="tanh"))
            if self.actnorm:
                stage.append(ActNorm(shape[0]))


class Glow(MultiScaleFlow):
    """Glow (Kingma & Dhariwal 2018): per level squeeze, K steps of (ActNorm, invertible 1x1
    convolution, coupling), then a split with a learned prior, except after the last level.

    Affine couplings use the sigmoid-bounded scale (or additive couplings); inputs are shifted
    to [-0.5, 0.5] unless a logit alpha is given.
    """

    COUPLINGS = ("affine", "additive")

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int | tuple[int, int] = 28,
        num_levels: int = 2,
        num_steps: int = 8,
        hidden_channels: int = 128,
        coupling: str = "affine",
        learned_prior: bool = True,
        logit_alpha: float | None = None,
    ) -> None:
        shape = _image_shape(in_channels, image_size)
        super().__init__(shape, logit_alpha)
        if num_levels < 1 or num_steps < 1:
            raise ValueError(f"num_levels and num_steps must be at least 1, got {num_levels} and {num_steps}")
        if hidden_channels <= 0:
            raise ValueError(f"hidden_channels must be positive, got {hidden_channels}")
        if coupling not in self.COUPLINGS:
            raise ValueError(f"Unknown coupling '{coupling}'. Available: {', '.join(self.COUPLINGS)}")
        _check_squeezable("Glow", shape, num_levels, f"num_levels={num_levels}")
        for level in range(num_levels):
            stage = nn.ModuleList([Squeeze()])
            shape = (shape[0] * 4, shape[1] // 2, shape[2] // 2)
            for step in range(num_steps):
                stage.extend(self._flow_step(shape[0], hidden_channels, coupling, step))
            self.stages.append(stage)
            if level < num_levels - 1:
                shape = self._add_split(shape, learned_prior)
        self.latent_shapes.append(shape)

    @staticmethod
    def _flow_step(channels: int, hidden: int, coupling: str, step: int) -> list[nn.Module]:
        """One step of flow: ActNorm -> invertible 1x1 conv -> coupling."""
        if coupling == "affine":
            couple = AffineCoupling(channels, hidden, "channel", step % 2, scale="sigmoid")
        else:
            couple = AdditiveCoupling(channels, hidden, "channel", step % 2)
        return [ActNorm(channels), InvertibleConv1x1(channels), couple]

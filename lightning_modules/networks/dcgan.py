"""DCGAN generator and discriminator (Radford et al. 2016) for 28, 32, 64 px and any 4*2^k or 7*2^k.

Both take an optional `num_classes`: the generator then concatenates a one-hot label to z
(Mirza & Osindero 2014) and the discriminator adds a projection term (Miyato & Koyama 2018).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from lightning_modules.networks.checks import check_positive

BASE_SIZES = (4, 7)


def upsampling_plan(image_size: int) -> tuple[int, int]:
    """Return (base size, number of 2x steps) with base * 2**steps == image_size."""
    for base in BASE_SIZES:
        steps, size = 0, base
        while size < image_size:
            size, steps = size * 2, steps + 1
        if size == image_size and steps >= 1:
            return base, steps
    raise ValueError(
        f"DCGAN supports image sizes 4*2^k or 7*2^k with k >= 1 (8, 14, 16, 28, 32, 64, ...); got {image_size}"
    )


def init_dcgan_weights(module: nn.Module) -> None:
    """Conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0, as in the DCGAN paper."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding):
        parametrized = getattr(module, "parametrizations", None)
        weight = parametrized.weight.original if parametrized is not None else module.weight
        nn.init.normal_(weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """Maps z of shape (B, latent_dim) (and labels) to images in [-1, 1] of shape (B, C, S, S)."""

    def __init__(
        self,
        latent_dim: int = 100,
        channels: int = 1,
        image_size: int = 28,
        base_width: int = 64,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        check_positive(latent_dim=latent_dim, channels=channels, base_width=base_width)
        if num_classes is not None:
            check_positive(num_classes=num_classes)
        base, steps = upsampling_plan(image_size)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        width = base_width * 2 ** (steps - 1)
        in_features = latent_dim + (num_classes or 0)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_features, width, base, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(steps - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes is not None:
            if labels is None:
                raise ValueError("This generator is conditional: pass class labels")
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)
        return self.net(z[:, :, None, None])


def _discriminator_norm(norm: str, width: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(width)
    if norm == "layer":
        # GroupNorm with one group normalises each sample over (C, H, W): a layer norm that keeps
        # the per-sample independence WGAN-GP's penalty assumes.
        return nn.GroupNorm(1, width)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"Unknown discriminator norm '{norm}'. Available: batch, layer, none")


class DCGANDiscriminator(nn.Module):
    """Maps images in [-1, 1] (and labels) to one logit per image, shape (B,)."""

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 28,
        base_width: int = 64,
        norm: str = "batch",
        spectral_norm: bool = False,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        check_positive(channels=channels, base_width=base_width)
        base, steps = upsampling_plan(image_size)
        wrap = _spectral if spectral_norm else _identity
        _discriminator_norm(norm, 1)  # validate the name before building
        width = base_width
        layers: list[nn.Module] = [
            wrap(nn.Conv2d(channels, width, 4, 2, 1)),
            nn.LeakyReLU(0.2, True),
        ]
        for _ in range(steps - 1):
            layers += [
                wrap(nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm == "none")),
                _discriminator_norm(norm, width * 2),
                nn.LeakyReLU(0.2, True),
            ]
            width *= 2
        self.features = nn.Sequential(*layers)
        self.head = wrap(nn.Conv2d(width, 1, base, 1, 0))
        self.num_classes = num_classes
        if num_classes is not None:
            check_positive(num_classes=num_classes)
            self.class_embedding = wrap(nn.Embedding(num_classes, width))
        self.apply(init_dcgan_weights)

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        features = self.features(images)
        logits = self.head(features).flatten()
        if self.num_classes is not None:
            if labels is None:
                raise ValueError("This discriminator is conditional: pass class labels")
            pooled = features.sum(dim=(2, 3))
            logits = logits + (self.class_embedding(labels) * pooled).sum(dim=1)
        return logits


def _spectral(module: nn.Module) -> nn.Module:
    return spectral_norm(module)


def _identity(module: nn.Module) -> nn.Module:
    return module

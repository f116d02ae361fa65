"""Encoders q(z|x) and decoders p(x|z) for VAEs and autoencoders: MLP and convolutional.

Encoders return the Gaussian posterior's (mean, log_variance), each of shape (B, latent_dim).
Decoders return likelihood parameters of shape (B, params_per_channel * C, H, W), unconstrained;
the likelihood (lightning_modules/objectives/likelihoods.py) gives them meaning. With `num_classes` set, both
take labels y and concatenate a one-hot code (conditional VAE, Sohn et al. 2015).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation '{name}'. Available: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _check_common(latent_dim: int, channels: int, image_size: int, num_classes: int | None) -> None:
    _check_positive(latent_dim=latent_dim, channels=channels, image_size=image_size)
    if num_classes is not None:
        _check_positive(num_classes=num_classes)


def _with_label(features: Tensor, y: Tensor | None, num_classes: int | None) -> Tensor:
    """Append one_hot(y) to flat features of shape (B, F) when the network is conditional."""
    if num_classes is None:
        return features
    if y is None:
        raise ValueError(f"This network is conditional on {num_classes} classes: pass labels y")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"Labels must lie in [0, {num_classes - 1}], got [{y.min().item()}, {y.max().item()}]")
    one_hot = F.one_hot(y.long(), num_classes).to(features.dtype)
    return torch.cat([features, one_hot], dim=1)


def _mlp(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for in_features, out_features in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(in_features, out_features), _activation(activation)]
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Flattened image -> hidden layers -> (mean, log_variance) of q(z|x)."""

    def __init__(
        self,
        latent_dim: int = 50,
        channels: int = 1,
        image_size: int = 28,
        hidden_dims: tuple[int, ...] | list[int] = (200, 200),
        activation: str = "tanh",
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        _check_common(latent_dim, channels, image_size, num_classes)
        _check_positive(**{f"hidden_dims[{i}]": h for i, h in enumerate(hidden_dims)})
        self.latent_dim, self.num_classes = latent_dim, num_classes
        in_features = channels * image_size * image_size + (num_classes or 0)
        self.body = _mlp([in_features, *hidden_dims], activation)
        self.head = nn.Linear([in_features, *hidden_dims][-1], 2 * latent_dim)

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        features = _with_label(x.flatten(1), y, self.num_classes)
        mean, log_variance = self.head(self.body(features)).chunk(2, dim=1)
        return mean, log_variance


class MLPDecoder(nn.Module):
    """z -> hidden layers -> likelihood parameters of shape (B, params_per_channel * C, S, S)."""

    def __init__(
        self,
        latent_dim: int = 50,
        channels: int = 1,
        image_size: int = 28,
        hidden_dims: tuple[int, ...] | list[int] = (200, 200),
        activation: str = "tanh",
        params_per_channel: int = 1,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        _check_common(latent_dim, channels, image_size, num_classes)
        _check_positive(params_per_channel=params_per_channel)
        _check_positive(**{f"hidden_dims[{i}]": h for i, h in enumerate(hidden_dims)})
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.params_per_channel = params_per_channel
        self.output_shape = (params_per_channel * channels, image_size, image_size)
        in_features = latent_dim + (num_classes or 0)
        self.body = _mlp([in_features, *hidden_dims], activation)
        out_features = params_per_channel * channels * image_size * image_size
        self.head = nn.Linear([in_features, *hidden_dims][-1], out_features)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        features = _with_label(z, y, self.num_classes)
        return self.head(self.body(features)).view(z.shape[0], *self.output_shape)


def _feature_size(image_size: int, num_downsamplings: int) -> int:
    """Side of the smallest feature map; each stride-2 layer must halve the image exactly."""
    if image_size % 2**num_downsamplings != 0:
        raise ValueError(
            f"image_size {image_size} must be divisible by 2**len(conv_channels) = "
            f"{2**num_downsamplings}; use conv_channels of length 2 for 28 px, up to 5 for 32 px"
        )
    return image_size // 2**num_downsamplings


class ConvEncoder(nn.Module):
    """Stride-2 4x4 convolutions (one per conv_channels entry), then linear to (mean, log_variance).

    28 px with two convolutions gives 7x7 features; 32 px with three gives 4x4.
    """

    def __init__(
        self,
        latent_dim: int = 32,
        channels: int = 1,
        image_size: int = 28,
        conv_channels: tuple[int, ...] | list[int] = (32, 64),
        hidden_dim: int = 256,
        activation: str = "relu",
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        _check_common(latent_dim, channels, image_size, num_classes)
        _check_positive(hidden_dim=hidden_dim, num_conv_layers=len(conv_channels))
        _check_positive(**{f"conv_channels[{i}]": c for i, c in enumerate(conv_channels)})
        side = _feature_size(image_size, len(conv_channels))
        self.latent_dim, self.num_classes = latent_dim, num_classes
        layers: list[nn.Module] = []
        for in_channels, out_channels in zip([channels, *conv_channels[:-1]], conv_channels, strict=True):
            layers += [nn.Conv2d(in_channels, out_channels, 4, 2, 1), _activation(activation)]
        self.convs = nn.Sequential(*layers)
        flat = conv_channels[-1] * side * side + (num_classes or 0)
        self.hidden = nn.Sequential(nn.Linear(flat, hidden_dim), _activation(activation))
        self.head = nn.Linear(hidden_dim, 2 * latent_dim)

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        features = _with_label(self.convs(x).flatten(1), y, self.num_classes)
        mean, log_variance = self.head(self.hidden(features)).chunk(2, dim=1)
        return mean, log_variance


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: linear layers to a small feature map, then transposed convolutions."""

    def __init__(
        self,
        latent_dim: int = 32,
        channels: int = 1,
        image_size: int = 28,
        conv_channels: tuple[int, ...] | list[int] = (64, 32),
        hidden_dim: int = 256,
        activation: str = "relu",
        params_per_channel: int = 1,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        _check_common(latent_dim, channels, image_size, num_classes)
        _check_positive(hidden_dim=hidden_dim, num_conv_layers=len(conv_channels))
        _check_positive(params_per_channel=params_per_channel)
        _check_positive(**{f"conv_channels[{i}]": c for i, c in enumerate(conv_channels)})
        side = _feature_size(image_size, len(conv_channels))
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.params_per_channel = params_per_channel
        self.base_shape = (conv_channels[0], side, side)
        self.hidden = nn.Sequential(
            nn.Linear(latent_dim + (num_classes or 0), hidden_dim),
            _activation(activation),
            nn.Linear(hidden_dim, conv_channels[0] * side * side),
            _activation(activation),
        )
        layers: list[nn.Module] = []
        for in_channels, out_channels in zip(conv_channels[:-1], conv_channels[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1),
                _activation(activation),
            ]
        # The last layer outputs raw likelihood parameters: no activation.
        layers.append(nn.ConvTranspose2d(conv_channels[-1], params_per_channel * channels, 4, 2, 1))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        features = self.hidden(_with_label(z, y, self.num_classes))
        return self.deconvs(features.view(z.shape[0], *self.base_shape))

"""StyleGAN2's building blocks (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

Equalized learning rate (Karras et al. 2018, section 4.1): weights are stored as N(0, 1) and scaled
at run time by He's constant 1/sqrt(fan_in), so Adam's per-parameter step sizes see every layer at
the same scale. Modulated convolution with weight demodulation (StyleGAN2 section 2.2, eq. 1-3) is
computed as one grouped convolution over the batch. Resampling uses the paper's [1, 3, 3, 1] filter:
bilinear 2x upsampling with half-pixel centres is that filter, and the discriminator blurs with it
before every stride-2 convolution. Not here: the fp16 clamping and custom CUDA kernels of the
official code (plain PyTorch ops instead).
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The gain that keeps a leaky ReLU(0.2) layer's output at the input's scale (StyleGAN2's bias_act).
LEAKY_RELU_GAIN = math.sqrt(2)
LEAKY_RELU_SLOPE = 0.2


def leaky_relu(x: Tensor) -> Tensor:
    """Leaky ReLU(0.2) times sqrt(2), the activation of every StyleGAN2 hidden layer."""
    return F.leaky_relu(x, LEAKY_RELU_SLOPE) * LEAKY_RELU_GAIN


class EqualizedLinear(nn.Module):
    """A linear layer whose weight is N(0, 1 / lr_multiplier) and scaled by lr_multiplier / sqrt(in_features).

    `lr_multiplier` < 1 slows the layer's effective learning rate by that factor (0.01 in the
    mapping network); the bias is stored divided by it and multiplied back at run time.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_multiplier))
        self.weight_scale = lr_multiplier / math.sqrt(in_features)
        self.lr_multiplier, self.activation = lr_multiplier, activation

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.weight_scale, self.bias * self.lr_multiplier)
        return leaky_relu(x) if self.activation else x


class Blur(nn.Module):
    """Depthwise convolution with the normalised [1, 3, 3, 1] x [1, 3, 3, 1] filter (StyleGAN2's resample filter)."""

    def __init__(self, padding: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        kernel = taps[:, None] * taps[None, :]
        self.register_buffer("kernel", kernel / kernel.sum(), persistent=False)
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        kernel = self.kernel.to(x.dtype).expand(channels, 1, 4, 4)
        return F.conv2d(F.pad(x, [self.padding] * 4), kernel, groups=channels)


class EqualizedConv2d(nn.Module):
    """A conv layer with weights N(0, 1) scaled by 1/sqrt(in_channels * kernel^2); `down` halves the size.

    Downsampling blurs first and then convolves with stride 2, as the official discriminator does.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: bool = False,
        down: bool = False,
        gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_scale = gain / math.sqrt(in_channels * kernel_size**2)
        self.activation, self.down = activation, down
        # Blur padding so that blur + stride-2 conv maps H to H/2 (the official upfirdn2d padding).
        self.blur = Blur(padding=(kernel_size + 1) // 2) if down else None
        self.padding = 0 if down else kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        if self.blur is not None:
            x = self.blur(x)
        x = F.conv2d(x, self.weight * self.weight_scale, self.bias, stride=2 if self.down else 1, padding=self.padding)
        return leaky_relu(x) if self.activation else x


def modulated_conv2d(
    x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, padding: int = 0, fused: bool = True
) -> Tensor:
    """Convolve each sample with its own modulated (and demodulated) weight.

    x: (B, I, H, W); weight: (O, I, k, k), already scaled; styles: (B, I). The weight of sample b is
    w'_oik = s_bi * w_oik (eq. 1), divided by sqrt(sum_ik w'_oik^2 + 1e-8) when demodulating (eq. 3),
    so unit-variance inputs give unit-variance outputs whatever the style's magnitude.
    `fused`: one grouped convolution with a weight per sample (the paper's implementation). Otherwise
    the same result as scale the input by s, convolve with the shared weight, scale the output by the
    demodulation factor, which is several times faster on CPUs (the official code trains this way).
    """
    if not fused:
        out = F.conv2d(x * styles[:, :, None, None].to(x.dtype), weight, padding=padding)
        if demodulate:
            factors = torch.rsqrt((weight[None] * styles[:, None, :, None, None]).square().sum(dim=(2, 3, 4)) + 1e-8)
            out = out * factors[:, :, None, None].to(out.dtype)
        return out
    batch, in_channels, height, width = x.shape
    out_channels, _, kernel, _ = weight.shape
    per_sample = weight[None] * styles[:, None, :, None, None]  # (B, O, I, k, k)
    if demodulate:
        per_sample = per_sample * torch.rsqrt(per_sample.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    grouped = per_sample.reshape(batch * out_channels, in_channels, kernel, kernel)
    out = F.conv2d(x.reshape(1, batch * in_channels, height, width), grouped, padding=padding, groups=batch)
    return out.reshape(batch, out_channels, *out.shape[2:])


class ModulatedConv2d(nn.Module):
    """A conv layer whose weight is modulated by an affine map of w (the per-layer style); `up` doubles the size.

    `affine_lr_multiplier` scales the learning speed of that affine map (1 in the paper) and
    nothing else: the initial network is the same whatever its value.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        w_dim: int,
        demodulate: bool = True,
        up: bool = False,
        affine_lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        # Styles start at 1 (bias_init=1): the initial network is an unmodulated convolution.
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0, lr_multiplier=affine_lr_multiplier)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.demodulate, self.up, self.padding = demodulate, up, kernel_size // 2

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        styles = self.affine(w)
        weight = self.weight * self.weight_scale
        # Grouped ("fused") for inference, as the official code; split while training, where it is faster.
        return modulated_conv2d(x, weight, styles, self.demodulate, self.padding, fused=not self.training)


class NoiseInjection(nn.Module):
    """Adds per-pixel Gaussian noise times a learned per-channel strength (initialised to 0)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        batch, _, height, width = x.shape
        # Drawn on the CPU from `generator`: a checkpointed generator makes the noise resumable.
        noise = torch.randn(batch, 1, height, width, generator=generator).to(device=x.device, dtype=x.dtype)
        return x + self.strength * noise


class StyledConv(nn.Module):
    """Modulated conv, noise, bias and leaky ReLU: one layer of the synthesis network."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, up: bool = False, affine_lr_multiplier: float = 1.0
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels, out_channels, 3, w_dim, up=up, affine_lr_multiplier=affine_lr_multiplier
        )
        self.noise = NoiseInjection(out_channels)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: Tensor, w: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return leaky_relu(self.noise(self.conv(x, w), generator) + self.bias)


class ToRGB(nn.Module):
    """A modulated 1x1 conv without demodulation to image channels, plus a bias (the skip generator's output)."""

    def __init__(self, in_channels: int, image_channels: int, w_dim: int, affine_lr_multiplier: float = 1.0) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels, image_channels, 1, w_dim, demodulate=False, affine_lr_multiplier=affine_lr_multiplier
        )
        self.bias = nn.Parameter(torch.zeros(1, image_channels, 1, 1))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias


def minibatch_standard_deviation(x: Tensor, group_size: int) -> Tensor:
    """Append one feature map: the standard deviation over groups of samples, averaged (Karras et al. 2018, 3).

    Groups have gcd(batch, group_size) samples (the official code asserts divisibility instead),
    so any batch size works; sample i lands in group i % (batch / group), as in the official code.
    """
    batch, channels, height, width = x.shape
    group = math.gcd(batch, group_size)
    y = x.float().reshape(group, -1, channels, height, width)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # (B/G, C, H, W)
    y = y.mean(dim=(1, 2, 3)).to(x.dtype)  # (B/G,)
    y = y.reshape(-1, 1, 1, 1).repeat(group, 1, height, width)
    return torch.cat([x, y], dim=1)

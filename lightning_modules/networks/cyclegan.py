"""CycleGAN networks: ResNet generator and 70x70 PatchGAN discriminator.

Architectures of Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks" (appendix 7.2), after Johnson et al. 2016 for the generator and
Isola et al. 2017 for the PatchGAN. Instance norm without affine parameters, reflection padding,
no dropout, weights drawn from N(0, 0.02).
"""

from torch import Tensor, nn

from lightning_modules.networks.checks import check_positive

INIT_STD = 0.02


def init_weights_normal(module: nn.Module, std: float = INIT_STD) -> None:
    """Draw every conv weight from N(0, std) and zero its bias, as in the CycleGAN paper."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, mean=0.0, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    """Instance norm as CycleGAN uses it: no learned scale/shift, no running statistics."""
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with instance norm and an identity shortcut."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Conv bias is kept: instance norm without affine parameters cannot supply a shift.
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3),
            instance_norm(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3),
            instance_norm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNetGenerator(nn.Module):
    """c7s1-64, d128, d256, n x R256, u128, u64, c7s1-C, tanh: maps [-1, 1] images to [-1, 1].

    The paper uses 9 residual blocks for 256x256 images and 6 for 128x128 and smaller.
    Height and width must be multiples of 4 (two stride-2 downsamplings, mirrored on the way up).
    """

    DOWNSAMPLINGS = 2

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        n_residual_blocks: int = 9,
    ) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, out_channels=out_channels, base_channels=base_channels)
        if n_residual_blocks < 0:
            raise ValueError(f"n_residual_blocks must be >= 0, got {n_residual_blocks}")
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, base_channels, kernel_size=7),
            instance_norm(base_channels),
            nn.ReLU(inplace=True),
        ]
        channels = base_channels
        for _ in range(self.DOWNSAMPLINGS):
            layers += _downsample(channels, channels * 2)
            channels *= 2
        layers += [ResidualBlock(channels) for _ in range(n_residual_blocks)]
        for _ in range(self.DOWNSAMPLINGS):
            layers += _upsample(channels, channels // 2)
            channels //= 2
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, out_channels, kernel_size=7),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)
        init_weights_normal(self)

    def forward(self, x: Tensor) -> Tensor:
        factor = 2**self.DOWNSAMPLINGS
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(
                f"ResNetGenerator needs height and width divisible by {factor}, "
                f"got {tuple(x.shape[-2:])}; choose a crop size that is a multiple of {factor}"
            )
        return self.model(x)


def _downsample(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1),
        instance_norm(out_channels),
        nn.ReLU(inplace=True),
    ]


def _upsample(in_channels: int, out_channels: int) -> list[nn.Module]:
    # output_padding=1 makes each stage exactly double the size, undoing one downsampling.
    return [
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1),
        instance_norm(out_channels),
        nn.ReLU(inplace=True),
    ]


class PatchDiscriminator(nn.Module):
    """PatchGAN: C64-C128-C256-C512 then a 1-channel conv; each output scores one image patch.

    With n_layers=3 each output unit sees a 70x70 receptive field. No norm on the first layer,
    LeakyReLU(0.2), no sigmoid (the least-squares loss works on raw scores).
    """

    MAX_CHANNEL_MULTIPLIER = 8

    def __init__(self, in_channels: int = 3, base_channels: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, base_channels=base_channels, n_layers=n_layers)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = base_channels
        for layer_index in range(1, n_layers + 1):
            # The last of these keeps stride 1: it widens the receptive field to 70 without
            # shrinking the score map further.
            stride = 1 if layer_index == n_layers else 2
            next_channels = base_channels * min(2**layer_index, self.MAX_CHANNEL_MULTIPLIER)
            layers += [
                nn.Conv2d(channels, next_channels, kernel_size=4, stride=stride, padding=1),
                instance_norm(next_channels),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = next_channels
        layers.append(nn.Conv2d(channels, 1, kernel_size=4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_weights_normal(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

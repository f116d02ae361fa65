"""Shapes, paper parameter counts and receptive field of the CycleGAN networks."""

import pytest
import torch
from torch import nn

from lightning_modules.networks.cyclegan import PatchDiscriminator, ResNetGenerator


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("size", "blocks", "width", "patches"),
    # Paper widths at 32 and 128 px; at 256 px a narrow copy keeps the CPU test fast, since
    # shapes do not depend on width.
    [(32, 6, 64, 2), (128, 6, 64, 14), (256, 9, 8, 30)],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size: int, blocks: int, width: int, patches: int, channels: int) -> None:
    generator = ResNetGenerator(channels, channels, base_channels=width, n_residual_blocks=blocks)
    discriminator = PatchDiscriminator(channels, base_channels=width)
    x = torch.rand(2, channels, size, size) * 2 - 1
    with torch.no_grad():
        fake = generator(x)
        scores = discriminator(fake)
    assert fake.shape == x.shape
    assert fake.abs().max() <= 1.0
    assert scores.shape == (2, 1, patches, patches)


def test_generator_maps_between_channel_counts() -> None:
    generator = ResNetGenerator(in_channels=1, out_channels=3, n_residual_blocks=1)
    with torch.no_grad():
        assert generator(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)


def test_paper_parameter_counts() -> None:
    # The reference implementation reports 11.378 M for ResNet-9 and 2.765 M for the PatchGAN.
    assert round(count_parameters(ResNetGenerator()) / 1e6, 3) == 11.378
    assert round(count_parameters(PatchDiscriminator()) / 1e6, 3) == 2.765


def test_weights_drawn_from_normal_0_002() -> None:
    weights = torch.cat([p.flatten() for n, p in ResNetGenerator().named_parameters() if "weight" in n])
    assert abs(weights.mean().item()) < 1e-3
    assert weights.std().item() == pytest.approx(0.02, rel=0.02)


def test_no_dropout_and_instance_norm_without_affine() -> None:
    modules = list(ResNetGenerator().modules()) + list(PatchDiscriminator().modules())
    assert not any(isinstance(m, nn.Dropout | nn.BatchNorm2d) for m in modules)
    norms = [m for m in modules if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(not m.affine and not m.track_running_stats for m in norms)


def test_patchgan_receptive_field_is_70() -> None:
    discriminator = PatchDiscriminator(in_channels=1, base_channels=4)
    # Instance norm mixes every position; without it the gradient shows the receptive field.
    for index, layer in enumerate(discriminator.model):
        if isinstance(layer, nn.InstanceNorm2d):
            discriminator.model[index] = nn.Identity()
    x = torch.zeros(1, 1, 160, 160, requires_grad=True)
    scores = discriminator(x)
    centre = scores.shape[-1] // 2
    scores[0, 0, centre, centre].backward()
    seen = x.grad[0, 0].abs() > 0
    assert seen.any(dim=1).sum().item() == 70
    assert seen.any(dim=0).sum().item() == 70


def test_generator_rejects_sizes_not_divisible_by_4() -> None:
    with pytest.raises(ValueError, match=r"divisible by 4.*\(30, 30\)"):
        ResNetGenerator(n_residual_blocks=0)(torch.zeros(1, 3, 30, 30))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ResNetGenerator(in_channels=0), "in_channels must be positive, got 0"),
        (lambda: ResNetGenerator(n_residual_blocks=-1), "n_residual_blocks must be >= 0, got -1"),
        (lambda: PatchDiscriminator(n_layers=0), "n_layers must be positive, got 0"),
    ],
)
def test_constructor_errors(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()

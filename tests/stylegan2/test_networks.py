"""StyleGAN2 networks: shapes at every size, truncation, conditioning, clear errors."""

import pytest
import torch

from lightning_modules.networks.stylegan2 import MappingNetwork, StyleGAN2Discriminator, StyleGAN2Generator

SMALL = {"channel_base": 256, "channel_max": 16}


@pytest.mark.parametrize(("image_size", "channels"), [(4, 1), (32, 1), (64, 3)])
@pytest.mark.parametrize("num_classes", [None, 10])
def test_generator_and_discriminator_are_sized_from_the_resolution(image_size, channels, num_classes):
    generator = StyleGAN2Generator(8, 8, 2, channels=channels, image_size=image_size, num_classes=num_classes, **SMALL)
    discriminator = StyleGAN2Discriminator(channels, image_size, num_classes=num_classes, **SMALL)
    labels = torch.arange(3) if num_classes else None
    images = generator(torch.randn(3, 8), labels)
    assert images.shape == (3, channels, image_size, image_size)
    assert generator.num_ws == 2 * (image_size.bit_length() - 1) - 2
    assert discriminator(images, labels).shape == (3,)


def test_channels_follow_base_and_max():
    generator = StyleGAN2Generator(8, 8, 1, image_size=32, channel_base=512, channel_max=64)
    assert generator.synthesis.constant.shape[1] == 64  # min(512 // 4, 64)
    assert generator.synthesis.blocks[-1][1].conv.weight.shape[0] == 16  # 512 // 32


def test_truncation_psi_0_gives_the_tracked_mean_and_psi_1_the_plain_w():
    torch.manual_seed(0)
    mapping = MappingNetwork(16, 16, 2)
    for _ in range(3):
        mapping(torch.randn(32, 16), update_mean=True)
    assert mapping.w_mean.abs().sum() > 0
    for seed in range(4):
        z = torch.randn(5, 16, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(mapping(z, psi=0.0), mapping.w_mean.expand(5, -1))
        torch.testing.assert_close(
            mapping(z, psi=1.0), mapping.layers(z * torch.rsqrt(z.square().mean(1, True) + 1e-8))
        )
        half = mapping(z, psi=0.5)
        torch.testing.assert_close(half, (mapping(z) + mapping.w_mean) / 2)


def test_tracked_mean_w_follows_the_batch_means():
    mapping = MappingNetwork(4, 4, 1, w_mean_beta=0.0)
    z = torch.randn(8, 4)
    w = mapping(z, update_mean=True)
    torch.testing.assert_close(mapping.w_mean, w.mean(dim=0).detach())


def test_conditional_networks_depend_on_the_label():
    generator = StyleGAN2Generator(8, 8, 2, image_size=8, num_classes=3, **SMALL)
    discriminator = StyleGAN2Discriminator(1, 8, num_classes=3, **SMALL)
    torch.nn.init.normal_(discriminator.class_embedding.weight)
    z, noise = torch.randn(1, 8), torch.Generator()
    first = generator(z, torch.tensor([0]), generator=noise.manual_seed(0))
    second = generator(z, torch.tensor([1]), generator=noise.manual_seed(0))
    assert not torch.allclose(first, second)
    images = torch.randn(1, 1, 8, 8)
    assert discriminator(images, torch.tensor([0])) != discriminator(images, torch.tensor([1]))
    with pytest.raises(ValueError, match="conditional: pass class labels"):
        generator(z)


def test_affine_lr_multiplier_scales_how_fast_the_styles_learn_and_nothing_else():
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    images, style_steps = {}, {}
    for multiplier in (1.0, 0.1):
        torch.manual_seed(0)
        generator = StyleGAN2Generator(
            8, 8, 1, channels=1, image_size=8, channel_base=32, affine_lr_multiplier=multiplier
        )
        images[multiplier] = generator(z, generator=torch.Generator().manual_seed(2))
        affine = generator.synthesis.first.conv.affine
        before = affine.weight * affine.weight_scale
        optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
        images[multiplier].square().sum().backward()
        optimizer.step()
        style_steps[multiplier] = (affine.weight * affine.weight_scale - before).detach().abs()
    torch.testing.assert_close(images[0.1], images[1.0])  # the same initial generator
    torch.testing.assert_close(style_steps[0.1], 0.1 * style_steps[1.0])  # a tenth of the style's step


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: StyleGAN2Generator(image_size=28), r"power of two >= 4 \(4, 8, 16, 32, 64, .*got 28"),
        (lambda: StyleGAN2Discriminator(image_size=2), "got 2"),
        (lambda: StyleGAN2Generator(image_size=48), "got 48"),
        (lambda: MappingNetwork(latent_dim=0), "latent_dim must be positive, got 0"),
        (lambda: MappingNetwork(4, 4, 1)(torch.randn(1, 4), psi=1.5), r"psi must lie in \[0, 1\].*got 1.5"),
        (lambda: MappingNetwork(4, 4, 1)(torch.randn(1, 4), psi=-0.1), "got -0.1"),
        (lambda: StyleGAN2Generator(image_size=8, affine_lr_multiplier=0), "affine_lr_multiplier must be positive"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(build, message):
    with pytest.raises(ValueError, match=message):
        build()

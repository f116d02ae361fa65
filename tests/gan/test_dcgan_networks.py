import pytest
import torch

from lightning_modules.networks.dcgan import DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize(("image_size", "channels"), [(28, 1), (32, 3), (64, 3)])
@pytest.mark.parametrize("num_classes", [None, 10])
def test_generator_and_discriminator_shapes(image_size, channels, num_classes):
    generator = DCGANGenerator(16, channels, image_size, base_width=8, num_classes=num_classes)
    discriminator = DCGANDiscriminator(channels, image_size, base_width=8, num_classes=num_classes, spectral_norm=True)
    labels = torch.arange(4) % 10 if num_classes else None
    images = generator(torch.randn(4, 16), labels)
    assert images.shape == (4, channels, image_size, image_size)
    assert images.abs().max() <= 1
    assert discriminator(images, labels).shape == (4,)


def test_projection_discriminator_depends_on_the_label():
    discriminator = DCGANDiscriminator(1, 28, base_width=8, num_classes=10, norm="none")
    images = torch.randn(1, 1, 28, 28)
    assert discriminator(images, torch.tensor([0])) != discriminator(images, torch.tensor([1]))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DCGANGenerator(latent_dim=0), "latent_dim must be positive, got 0"),
        (lambda: DCGANGenerator(image_size=30), "got 30"),
        (lambda: DCGANDiscriminator(norm="batchnorm"), "Unknown discriminator norm 'batchnorm'"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(build, message):
    with pytest.raises(ValueError, match=message):
        build()

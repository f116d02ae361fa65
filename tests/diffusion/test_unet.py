"""The U-Net denoiser: shapes for the datasets' sizes, time and class conditioning, start-up errors."""

import pytest
import torch

from lightning_modules.networks.unet import UNet, sinusoidal_embedding


def small_unet(**overrides) -> UNet:
    settings = dict(
        in_channels=1,
        image_size=28,
        base_channels=8,
        channel_multipliers=(1, 2),
        num_res_blocks=1,
        attention_resolutions=(14,),
        dropout=0.0,
        norm_groups=4,
    )
    network = UNet(**(settings | overrides))
    # The last convolution of every block starts at zero (each block the identity); give them
    # weights so the output depends on the input, the time and the class.
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d) and not module.weight.any():
            module.weight.data = 0.1 * torch.randn(module.weight.shape, generator=generator)
    return network


@pytest.mark.parametrize(
    ("channels", "size", "multipliers", "attention"), [(1, 28, (1, 2, 2), (14,)), (3, 32, (1, 2, 2, 2), (16,))]
)
def test_output_has_the_input_shape(channels, size, multipliers, attention):
    network = small_unet(
        in_channels=channels, image_size=size, channel_multipliers=multipliers, attention_resolutions=attention
    )
    x = torch.randn(2, channels, size, size)
    assert network(x, torch.tensor([3, 500])).shape == x.shape


def test_output_depends_on_time_and_class():
    network = small_unet(num_classes=10).eval()
    x = torch.randn(2, 1, 28, 28)
    base = network(x, torch.tensor([10, 10]), torch.tensor([1, 1]))
    assert not torch.allclose(base, network(x, torch.tensor([900, 900]), torch.tensor([1, 1])))
    assert not torch.allclose(base, network(x, torch.tensor([10, 10]), torch.tensor([2, 2])))
    assert not torch.allclose(base, network(x, torch.tensor([10, 10])))  # no label: the null token


def test_sinusoidal_embedding_has_the_requested_width_and_separates_times():
    embedding = sinusoidal_embedding(torch.tensor([0.0, 1.0, 999.0]), 16)
    assert embedding.shape == (3, 16) and not torch.allclose(embedding[1], embedding[2])


def test_image_size_that_cannot_be_halved_enough_is_refused_at_start_up():
    with pytest.raises(ValueError, match=r"cannot halve image_size=28 3 times .* Use at most 3 channel multipliers"):
        small_unet(channel_multipliers=(1, 2, 2, 2))


def test_other_bad_settings_are_refused():
    with pytest.raises(ValueError, match="GroupNorm with 32 groups cannot split 8 channels"):
        small_unet(norm_groups=32)
    with pytest.raises(ValueError, match="unconditional"):
        small_unet()(torch.zeros(1, 1, 28, 28), torch.zeros(1), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"built for images of shape \(1, 28, 28\)"):
        small_unet()(torch.zeros(1, 3, 32, 32), torch.zeros(1))

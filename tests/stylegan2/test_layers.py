"""StyleGAN2 layers: equalized learning rate, modulated convolution, minibatch standard deviation."""

import math

import pytest
import torch
import torch.nn.functional as F

from lightning_modules.networks.stylegan2_layers import (
    EqualizedConv2d,
    EqualizedLinear,
    ModulatedConv2d,
    minibatch_standard_deviation,
    modulated_conv2d,
)


def per_sample_modulated_conv(x, weight, styles, demodulate, padding):
    """The definition, one sample at a time (StyleGAN2 eq. 1 and 3)."""
    outputs = []
    for sample, style in zip(x, styles, strict=True):
        modulated = weight * style[None, :, None, None]
        if demodulate:
            modulated = modulated / (modulated.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        outputs.append(F.conv2d(sample[None], modulated, padding=padding))
    return torch.cat(outputs)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
def test_grouped_and_split_modulated_conv_equal_a_per_sample_loop(demodulate, fused):
    torch.manual_seed(0)
    x, weight, styles = torch.randn(5, 6, 8, 8), torch.randn(7, 6, 3, 3), torch.randn(5, 6)
    grouped = modulated_conv2d(x, weight, styles, demodulate, padding=1, fused=fused)
    assert grouped.shape == (5, 7, 8, 8)
    torch.testing.assert_close(grouped, per_sample_modulated_conv(x, weight, styles, demodulate, 1))


def test_demodulation_keeps_unit_variance_whatever_the_style_scale():
    torch.manual_seed(0)
    x, weight = torch.randn(8, 64, 12, 12), torch.randn(32, 64, 3, 3)
    styles = torch.rand(8, 64) * 10  # styles far from 1: without demodulation the output scale follows them
    demodulated = modulated_conv2d(x, weight, styles, demodulate=True)  # no padding: no border zeros
    plain = modulated_conv2d(x, weight / math.sqrt(64 * 9), styles, demodulate=False)
    assert 0.9 < demodulated.var().item() < 1.1
    assert plain.var().item() > 10


def test_equalized_linear_applies_its_claimed_runtime_scale():
    torch.manual_seed(0)
    layer = EqualizedLinear(256, 128, bias_init=1.0, lr_multiplier=0.01)
    assert layer.weight_scale == pytest.approx(0.01 / 16)
    # Stored N(0, 1/lr_multiplier), so the runtime weight is N(0, 1/fan_in): unit-variance outputs.
    assert layer.weight.std().item() == pytest.approx(100, rel=0.05)
    x = torch.randn(4096, 256)
    out = layer(x)
    torch.testing.assert_close(out, F.linear(x, layer.weight * 0.01 / 16, layer.bias * 0.01))
    assert (out - 1).var().item() == pytest.approx(1, rel=0.1)
    torch.testing.assert_close(out.mean(), torch.tensor(1.0), atol=0.05, rtol=0)


def test_equalized_conv_applies_its_claimed_runtime_scale():
    torch.manual_seed(0)
    layer = EqualizedConv2d(16, 8, 3)
    assert layer.weight_scale == pytest.approx(1 / math.sqrt(16 * 9))
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight / 12, layer.bias, padding=1))


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_downsampling_conv_halves_the_size(kernel_size):
    layer = EqualizedConv2d(2, 3, kernel_size, down=True)
    assert layer(torch.randn(1, 2, 16, 16)).shape == (1, 3, 8, 8)


def test_modulated_conv_upsamples_and_starts_unmodulated():
    layer = ModulatedConv2d(4, 6, 3, w_dim=8, up=True)
    assert layer(torch.randn(2, 4, 4, 4), torch.randn(2, 8)).shape == (2, 6, 8, 8)
    # Affine biases start at 1 and its weights scale w down: styles start near 1.
    assert layer.affine(torch.zeros(1, 8)).allclose(torch.ones(1, 4))


def test_minibatch_standard_deviation_sees_diversity_and_takes_any_batch_size():
    same = torch.randn(1, 3, 4, 4).repeat(4, 1, 1, 1)
    assert minibatch_standard_deviation(same, group_size=4)[:, -1].abs().max() < 1e-3
    different = torch.randn(6, 3, 4, 4)  # 6 is not a multiple of 4: groups of gcd(6, 4) = 2
    out = minibatch_standard_deviation(different, group_size=4)
    assert out.shape == (6, 4, 4, 4) and out[:, -1].min() > 0.1

"""Shapes and argument checks of the VAE encoders and decoders."""

import pytest
import torch

from lightning_modules.networks.vae import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

IMAGE_FORMATS = [(1, 28), (3, 32)]


@pytest.mark.parametrize(("channels", "image_size"), IMAGE_FORMATS)
@pytest.mark.parametrize("encoder_class", [MLPEncoder, ConvEncoder])
def test_encoder_returns_mean_and_log_variance(encoder_class, channels, image_size):
    encoder = encoder_class(latent_dim=5, channels=channels, image_size=image_size)
    mean, log_variance = encoder(torch.rand(4, channels, image_size, image_size))
    assert mean.shape == (4, 5)
    assert log_variance.shape == (4, 5)


@pytest.mark.parametrize(("channels", "image_size"), IMAGE_FORMATS)
@pytest.mark.parametrize("decoder_class", [MLPDecoder, ConvDecoder])
@pytest.mark.parametrize("params_per_channel", [1, 2])
def test_decoder_returns_likelihood_parameters(decoder_class, channels, image_size, params_per_channel):
    decoder = decoder_class(
        latent_dim=5,
        channels=channels,
        image_size=image_size,
        params_per_channel=params_per_channel,
    )
    params = decoder(torch.randn(4, 5))
    assert params.shape == (4, params_per_channel * channels, image_size, image_size)


def test_conv_networks_for_cifar_with_three_downsamplings():
    encoder = ConvEncoder(latent_dim=8, channels=3, image_size=32, conv_channels=(16, 32, 64))
    decoder = ConvDecoder(latent_dim=8, channels=3, image_size=32, conv_channels=(64, 32, 16), params_per_channel=2)
    mean, _ = encoder(torch.rand(2, 3, 32, 32))
    assert mean.shape == (2, 8)
    assert decoder(mean).shape == (2, 6, 32, 32)


@pytest.mark.parametrize(("encoder_class", "decoder_class"), [(MLPEncoder, MLPDecoder), (ConvEncoder, ConvDecoder)])
def test_conditional_networks_use_the_label(encoder_class, decoder_class):
    torch.manual_seed(0)
    encoder = encoder_class(latent_dim=3, num_classes=10)
    decoder = decoder_class(latent_dim=3, num_classes=10)
    x, z = torch.rand(2, 1, 28, 28), torch.randn(2, 3)
    zeros, ones = torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long)
    assert not torch.allclose(encoder(x, zeros)[0], encoder(x, ones)[0])
    assert not torch.allclose(decoder(z, zeros), decoder(z, ones))
    with pytest.raises(ValueError, match="pass labels y"):
        decoder(z)
    with pytest.raises(ValueError, match=r"Labels must lie in \[0, 9\]"):
        decoder(z, torch.tensor([0, 10]))


@pytest.mark.parametrize("network_class", [MLPEncoder, MLPDecoder, ConvEncoder, ConvDecoder])
def test_non_positive_latent_dim_is_rejected(network_class):
    with pytest.raises(ValueError, match="latent_dim must be positive, got 0"):
        network_class(latent_dim=0)


def test_bad_arguments_are_rejected_with_their_names():
    with pytest.raises(ValueError, match="Unknown activation 'relu6'"):
        MLPEncoder(activation="relu6")
    with pytest.raises(ValueError, match="divisible by 2\\*\\*len\\(conv_channels\\) = 8"):
        ConvEncoder(image_size=28, conv_channels=(8, 16, 32))
    with pytest.raises(ValueError, match="params_per_channel must be positive"):
        ConvDecoder(params_per_channel=0)
    with pytest.raises(ValueError, match="num_classes must be positive"):
        MLPDecoder(num_classes=0)
    with pytest.raises(ValueError, match=r"hidden_dims\[1\] must be positive"):
        MLPDecoder(hidden_dims=(10, 0))

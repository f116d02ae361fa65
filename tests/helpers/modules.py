"""Tiny LightningModules for unit tests: a CycleGAN and a VAE small enough to train in seconds on CPU."""

import functools

import torch

from lightning_modules.cyclegan import CycleGAN
from lightning_modules.networks.cyclegan import PatchDiscriminator, ResNetGenerator
from lightning_modules.networks.vae import MLPDecoder, MLPEncoder
from lightning_modules.objectives.likelihoods import BernoulliLikelihood
from lightning_modules.vae import VAE

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)
CYCLEGAN_ADAM = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


def tiny_cyclegan(channels: int = 3, **settings) -> CycleGAN:
    return CycleGAN(
        generator_ab=ResNetGenerator(channels, channels, base_channels=4, n_residual_blocks=1),
        generator_ba=ResNetGenerator(channels, channels, base_channels=4, n_residual_blocks=1),
        discriminator_a=PatchDiscriminator(channels, base_channels=4, n_layers=2),
        discriminator_b=PatchDiscriminator(channels, base_channels=4, n_layers=2),
        optimizer_g=CYCLEGAN_ADAM,
        optimizer_d=CYCLEGAN_ADAM,
        **settings,
    )


def tiny_vae(likelihood=None, num_classes=None, module_class=VAE, **kwargs):
    likelihood = likelihood or BernoulliLikelihood()
    encoder = MLPEncoder(latent_dim=4, image_size=8, hidden_dims=(16,), num_classes=num_classes)
    decoder = MLPDecoder(
        latent_dim=4,
        image_size=8,
        hidden_dims=(16,),
        params_per_channel=likelihood.params_per_channel,
        num_classes=num_classes,
    )
    return module_class(encoder, decoder, likelihood, ADAM, **kwargs)

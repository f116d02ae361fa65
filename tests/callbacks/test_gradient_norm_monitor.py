"""Gradient norms per network: each optimizer's own networks, every N batches, every player."""

import csv
import functools

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.callbacks.gradient_norm_monitor import GradientNormMonitor, networks_updated_by
from lightning_modules.gan import GAN
from lightning_modules.networks.dcgan import DCGANDiscriminator, DCGANGenerator

adam = functools.partial(torch.optim.Adam, lr=2e-4)


def tiny_gan(**settings) -> GAN:
    return GAN(
        DCGANGenerator(latent_dim=4, image_size=16, base_width=4),
        DCGANDiscriminator(image_size=16, base_width=4),
        adam,
        adam,
        **settings,
    )


def test_each_optimizer_owns_its_player_and_the_ema_copy_is_nobodys():
    module = tiny_gan()
    optimizer_g, optimizer_d = module.configure_optimizers()
    assert [name for name, _ in networks_updated_by(module, optimizer_g)] == ["generator"]
    assert [name for name, _ in networks_updated_by(module, optimizer_d)] == ["discriminator"]


def test_a_generator_that_steps_every_third_batch_is_logged_in_each_window(tmp_path):
    # n_critic=3: D steps every batch, G after batches 2 and 5; windows of 2 batches: [0,1], [2,3], [4,5].
    images = torch.rand(12, 1, 16, 16)
    data = DataLoader(TensorDataset(images, torch.zeros(12, dtype=torch.long)), batch_size=2)
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=CSVLogger(tmp_path),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[GradientNormMonitor(every_n_batches=2)],
    )
    trainer.fit(tiny_gan(n_critic=3), data)
    with (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    logged = {
        name: [int(r["step"]) for r in rows if r[f"train/grad_norm/{name}"]] for name in ("generator", "discriminator")
    }
    assert logged == {"generator": [2, 5], "discriminator": [0, 2, 4]}

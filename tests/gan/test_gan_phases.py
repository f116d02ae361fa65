"""What shows a GAN's training phases: D's mean outputs, a held-out D loss that compares with the
training one, and gradient clipping that acts on true (unscaled) gradients under 16-bit AMP."""

import functools

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins import MixedPrecision
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.gan import GAN
from lightning_modules.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from lightning_modules.objectives.adversarial import mean_discriminator_output
from tests.cyclegan.test_cyclegan_training import tiny_module as tiny_cyclegan
from tests.helpers.trainer import quiet_trainer

IMAGES = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0))


def tiny_gan(lr: float = 2e-4, **kwargs) -> GAN:
    """A 16x16 DCGAN with batch norm in both players; seed 0, so its first training noise is
    exactly the noise held-out batch 0 uses."""
    optimizer = functools.partial(torch.optim.SGD, lr=lr)
    return GAN(
        DCGANGenerator(latent_dim=8, channels=1, image_size=16, base_width=8),
        DCGANDiscriminator(channels=1, image_size=16, base_width=8, norm="batch"),
        optimizer,
        optimizer,
        ema_decay=None,
        seed=0,
        **kwargs,
    )


def one_batch_loader() -> DataLoader:
    return DataLoader(TensorDataset(IMAGES, torch.zeros(len(IMAGES), dtype=torch.long)), batch_size=len(IMAGES))


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        ("non_saturating", torch.sigmoid(torch.tensor([-2.0, 0.0, 3.0])).mean()),
        ("minimax", torch.sigmoid(torch.tensor([-2.0, 0.0, 3.0])).mean()),
        ("hinge", torch.tensor(1 / 3)),
        ("least_squares", torch.tensor(1 / 3)),
        ("wasserstein", torch.tensor(1 / 3)),
    ],
)
def test_discriminator_output_is_a_probability_only_for_the_logistic_losses(loss, expected):
    assert mean_discriminator_output(torch.tensor([-2.0, 0.0, 3.0]), loss) == pytest.approx(expected.item())


def test_training_logs_d_real_d_fake_and_d_fake_after_as_probabilities():
    trainer = quiet_trainer(max_steps=2, limit_val_batches=0)
    trainer.fit(tiny_gan(), one_batch_loader())
    logged = trainer.callback_metrics
    for name in ("train/d_real", "train/d_fake", "train/d_fake_after"):
        assert 0 < float(logged[name]) < 1, name


def test_val_d_loss_equals_train_d_loss_on_the_same_batch_and_weights_and_leaves_buffers():
    # lr=0: weights stay put, while training moves the batch-norm running statistics away from
    # the batch statistics the training loss uses.
    module, loader = tiny_gan(lr=0.0), one_batch_loader()
    trainer = quiet_trainer(max_steps=2, limit_val_batches=0)
    trainer.fit(module, loader)
    train_loss = float(trainer.callback_metrics["train/d_loss"])
    buffers = {name: value.clone() for name, value in module.named_buffers()}
    val_loss = quiet_trainer().validate(module, loader, verbose=False)[0]["val/d_loss"]
    assert val_loss == pytest.approx(train_loss, rel=1e-5)
    for name, value in module.named_buffers():
        assert torch.equal(value, buffers[name]), f"validation changed buffer {name}"


def tiny_cyclegan_and_loader(clip: float) -> tuple[L.LightningModule, DataLoader]:
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    pairs = [{"A": image, "B": image.flip(-1)} for image in images]
    return tiny_cyclegan(gradient_clip_val=clip), DataLoader(pairs, batch_size=2)


def tiny_gan_and_loader(clip: float) -> tuple[L.LightningModule, DataLoader]:
    return tiny_gan(gradient_clip_val=clip), one_batch_loader()


@pytest.mark.parametrize("build", [tiny_gan_and_loader, pytest.param(tiny_cyclegan_and_loader, marks=pytest.mark.slow)])
def test_gradient_clipping_under_16_mixed_acts_on_unscaled_gradients(build):
    """A loss scale of 2^10 must not shrink the clip: the gradient the optimizer applies has norm clip."""
    clip = 1e-3
    module, loader = build(clip)
    applied_norms = []

    def record_norm(optimizer, args, kwargs):
        gradients = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        applied_norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in gradients])).item())

    class RecordAppliedGradients(L.Callback):
        def on_train_start(self, trainer, pl_module):
            for optimizer in trainer.optimizers:
                optimizer.register_step_pre_hook(record_norm)

    amp = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=2.0**10))
    trainer = quiet_trainer(max_steps=2, limit_val_batches=0, plugins=[amp], callbacks=[RecordAppliedGradients()])
    trainer.fit(module, loader)
    assert len(applied_norms) == 2  # one discriminator step, one generator step
    assert applied_norms == pytest.approx([clip, clip], rel=1e-3)

"""GANs trained with Lightning manual optimization: a discriminator step, then a generator step.

Optimizer order, the same in every adversarial module: [generator, discriminator].
`trainer.global_step` counts both optimizers' steps, so it advances by 2 per batch (see README).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from lightning_modules.objectives.adversarial import adversarial_loss, gradient_penalty, mean_discriminator_output
from lightning_modules.training.ema import ema_copy
from lightning_modules.training.guards import check_finite
from lightning_modules.training.noise import CheckpointedNoise
from lightning_modules.training.optimizer_factory import OptimizerFactory, checked_optimizer_factory


class GAN(CheckpointedNoise, L.LightningModule):
    """Unconditional or class-conditional GAN; conditional when the generator has `num_classes`."""

    # Checkpoints follow this without FID (metrics=none): a discriminator that separates held-out
    # real images from samples less well (a higher loss) is facing the better generator.
    monitor_without_sample_metrics = ("val/d_loss", "max")

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        loss: str = "non_saturating",
        n_critic: int = 1,
        gradient_penalty_weight: float = 0.0,
        gradient_clip_val: float | None = None,
        ema_decay: float | None = 0.999,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # logger=False: the run logs its whole config once (run.log_run_config), not these beside it.
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer_g", "optimizer_d"], logger=False)
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if gradient_penalty_weight < 0:
            raise ValueError(f"gradient_penalty_weight must be >= 0, got {gradient_penalty_weight}")
        if getattr(generator, "num_classes", None) != getattr(discriminator, "num_classes", None):
            raise ValueError("generator and discriminator must agree on num_classes")
        self.discriminator_loss, self.generator_loss = adversarial_loss(loss)
        self.generator, self.discriminator = generator, discriminator
        self.optimizer_g = checked_optimizer_factory("optimizer_g", optimizer_g)
        self.optimizer_d = checked_optimizer_factory("optimizer_d", optimizer_d)
        self.generator_ema = ema_copy(generator, ema_decay) if ema_decay is not None else None
        self.latent_dim: int = generator.latent_dim
        self.num_classes: int | None = generator.num_classes
        # A module-owned generator for noise: its state is checkpointed, so a resumed run draws
        # exactly the noise an uninterrupted run would have drawn.
        self.noise_generator = torch.Generator().manual_seed(seed)

    # --- the shared interface ---

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None) -> Tensor:
        """n images in [0, 1] from the EMA generator (or the generator when EMA is off)."""
        network = self.generator_ema.module if self.generator_ema is not None else self.generator
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        if self.num_classes is not None and labels is None:
            labels = torch.randint(self.num_classes, (n,), generator=generator)
        labels = labels.to(self.device) if labels is not None else None
        was_training = network.training
        network.eval()
        images = network(z, labels)
        network.train(was_training)
        return ((images.float() + 1) / 2).clamp(0, 1)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Generate images in [-1, 1] from noise."""
        return self.generator(z, labels)

    # --- training ---

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, labels = self.prepare_batch(batch)
        optimizer_g, optimizer_d = self.optimizers()
        fake = self.generator(self.noise(len(real)), labels)
        parts = self.discriminator_step(real, fake.detach(), labels, optimizer_d)
        if (batch_idx + 1) % self.hparams.n_critic == 0:
            parts |= self.generator_step(fake, labels, optimizer_g)
            if self.generator_ema is not None:
                self.generator_ema.update_parameters(self.generator)
        self.log_dict({f"train/{name}": value for name, value in parts.items()}, prog_bar=True)

    def discriminator_step(
        self, real: Tensor, fake: Tensor, labels: Tensor | None, optimizer: Any
    ) -> dict[str, Tensor]:
        with self.toggled_optimizer(optimizer):
            real_logits, fake_logits = self.discriminator(real, labels), self.discriminator(fake, labels)
            loss = self.discriminator_loss(real_logits, fake_logits)
            parts = {
                "d_loss": loss.detach(),
                "d_real": mean_discriminator_output(real_logits, self.hparams.loss),
                "d_fake": mean_discriminator_output(fake_logits, self.hparams.loss),
            }
            if self.hparams.gradient_penalty_weight > 0:
                penalty = self.penalty(real, fake, labels)
                loss = loss + self.hparams.gradient_penalty_weight * penalty
                parts["gradient_penalty"] = penalty.detach()
            self.optimize(loss, "discriminator loss", optimizer)
        return parts

    def generator_step(self, fake: Tensor, labels: Tensor | None, optimizer: Any) -> dict[str, Tensor]:
        with self.toggled_optimizer(optimizer):
            fake_logits = self.discriminator(fake, labels)
            loss = self.generator_loss(fake_logits)
            self.optimize(loss, "generator loss", optimizer)
        # D(G(z)) after D's step, on the very fakes G learns from: G's view of how far D is ahead.
        return {"g_loss": loss.detach(), "d_fake_after": mean_discriminator_output(fake_logits, self.hparams.loss)}

    def optimize(self, loss: Tensor, name: str, optimizer: Any) -> None:
        check_finite(name, loss, self.global_step)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()  # clips in on_before_optimizer_step

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Lightning calls this inside optimizer.step(), after 16-mixed AMP has unscaled the
        # gradients: clipping before step() would clip gradients still multiplied by the loss scale.
        if self.hparams.gradient_clip_val:
            self.clip_gradients(optimizer, self.hparams.gradient_clip_val, gradient_clip_algorithm="norm")

    def penalty(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
        """WGAN-GP penalty, in float32 even under mixed precision (a half-precision gradient norm overflows)."""
        mixing = torch.rand(len(real), 1, 1, 1, generator=self.noise_generator).to(self.device)
        with torch.autocast(self.device.type, enabled=False):
            return gradient_penalty(lambda x: self.discriminator(x, labels), real.float(), fake.float(), mixing)

    def noise(self, n: int) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=self.noise_generator).to(self.device)

    def prepare_batch(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor | None]:
        images, labels = batch
        return images * 2 - 1, labels if self.num_classes is not None else None

    # --- evaluation: the discriminator loss on held-out images shows discriminator overfitting ---

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val/d_loss", self.heldout_discriminator_loss(batch, batch_idx), sync_dist=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("test/d_loss", self.heldout_discriminator_loss(batch, batch_idx), sync_dist=True)

    def heldout_discriminator_loss(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """The discriminator loss as training computes it, so val/d_loss and train/d_loss compare.

        Training normalises with each batch's own statistics (real and fake batches apart); eval-mode
        running statistics mix the two, which would make this a different quantity.
        """
        real, labels = self.prepare_batch(batch)
        noise = torch.randn(len(real), self.latent_dim, generator=torch.Generator().manual_seed(batch_idx))
        with batch_statistics(self.generator), batch_statistics(self.discriminator):
            fake = self.generator(noise.to(self.device), labels)
            return self.discriminator_loss(self.discriminator(real, labels), self.discriminator(fake, labels))

    # --- setup and state ---

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            self.optimizer_g(self.generator.parameters()),
            self.optimizer_d(self.discriminator.parameters()),
        ]


@contextmanager
def batch_statistics(network: nn.Module) -> Iterator[None]:
    """Run `network` in training mode (batch-norm batch statistics) and leave its buffers as they were.

    Buffers (running statistics, spectral-norm vectors) are restored afterwards, so evaluation
    never changes what training or a checkpoint sees.
    """
    was_training = network.training
    saved = {name: buffer.clone() for name, buffer in network.named_buffers()}
    network.train()
    try:
        yield
    finally:
        network.train(was_training)
        for name, buffer in network.named_buffers():
            buffer.copy_(saved[name])

"""StyleGAN2 (Karras et al. 2020) trained as the other GANs are: a discriminator step, then a generator step.

On top of the GAN spine (manual optimization, adversarial losses, checkpointed noise, clipping,
held-out discriminator loss): lazy R1 on the discriminator every `r1_interval` steps, lazy path-length
regularization on the generator every `path_length_interval` steps, style mixing, a generator EMA
with a half-life in images, and optional DiffAugment. Each lazy regularizer is its own optimizer
step, weighted by its interval, with Adam's settings rescaled as in the paper (section 3.1).
The lazy counters, images seen and the path-length mean are buffers, so checkpoints hold them and a
resumed run regularizes on exactly the steps an uninterrupted one would.
"""

import copy
from typing import Any

import torch
from torch import Tensor, nn

from lightning_modules.callbacks.stylegan2_grids import interpolation_grid, style_mixing_grid, truncation_grid
from lightning_modules.gan import GAN
from lightning_modules.networks.checks import check_positive
from lightning_modules.objectives.adversarial import mean_discriminator_output
from lightning_modules.objectives.stylegan2_regularizers import (
    lazy_regularization_adam,
    mix_styles,
    path_length_noise,
    path_length_penalty,
    path_lengths,
    r1_penalty,
    style_mixing_cutoff,
)
from lightning_modules.training.diff_augment import check_policy, diff_augment
from lightning_modules.training.eval_mode import evaluation_mode
from lightning_modules.training.half_life_ema import check_half_life, ema_update, half_life_ema_beta
from lightning_modules.training.optimizer_factory import OptimizerFactory

# Lightning precisions that run the regularizers' double backward in float16 with no loss scaler.
UNSCALED_HALF_PRECISION = ("16-true",)


def check_precision(precision: str) -> None:
    """Refuse float16 without a loss scaler, naming the fix (the penalties' gradients would underflow)."""
    if precision in UNSCALED_HALF_PRECISION:
        raise ValueError(
            f"trainer.precision={precision} runs float16 without a loss scaler, so the gradients of the R1 "
            "and path-length penalties underflow. Use trainer.precision=bf16-mixed (or 16-mixed, whose "
            "scaler covers them; the penalties themselves are computed in float32) or 32-true."
        )


class StyleGAN2(GAN):
    """StyleGAN2 with lazy R1 and path-length regularization; conditional when the generator has `num_classes`.

    Capabilities (lightning_modules.interface): ImageSampler, ExtraGrids.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        loss: str = "non_saturating",
        r1_gamma: float = 10.0,
        r1_interval: int = 16,
        path_length_weight: float = 2.0,
        path_length_interval: int = 4,
        path_length_decay: float = 0.01,
        path_length_batch_shrink: int = 2,
        style_mixing_probability: float = 0.9,
        ema_kimg: float = 10.0,
        ema_rampup: float | None = 0.05,
        augment: str = "",
        num_classes: int | None = None,
        gradient_clip_val: float | None = None,
        seed: int = 0,
    ) -> None:
        if num_classes != generator.num_classes:
            raise ValueError(
                f"model.num_classes={num_classes} but the generator has num_classes={generator.num_classes}; "
                "set model.num_classes only (the networks follow it)"
            )
        super().__init__(
            generator,
            discriminator,
            optimizer_g,
            optimizer_d,
            loss,
            gradient_clip_val=gradient_clip_val,
            ema_decay=None,  # the EMA here has a half-life in images (below)
            seed=seed,
        )
        check_positive(
            r1_interval=r1_interval,
            path_length_interval=path_length_interval,
            path_length_batch_shrink=path_length_batch_shrink,
        )
        if r1_gamma < 0 or path_length_weight < 0:
            raise ValueError(f"r1_gamma and path_length_weight must be >= 0, got {r1_gamma}, {path_length_weight}")
        if not 0.0 <= style_mixing_probability <= 1.0:
            raise ValueError(f"style_mixing_probability must lie in [0, 1], got {style_mixing_probability}")
        check_half_life(ema_kimg, ema_rampup)
        check_policy(augment)
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False)
        for name in ("discriminator_steps", "generator_steps", "images_seen"):
            self.register_buffer(name, torch.zeros((), dtype=torch.long))
        self.register_buffer("path_length_mean", torch.zeros(()))

    # --- the shared interface ---

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None, psi: float = 1.0
    ) -> Tensor:
        """n images in [0, 1] from the EMA generator; `psi` < 1 truncates towards the mean w."""
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        if self.num_classes is not None and labels is None:
            labels = torch.randint(self.num_classes, (n,), generator=generator)
        labels = labels.to(self.device) if labels is not None else None
        images = self.generator_ema(z, labels, psi=psi, generator=generator)
        return ((images.float() + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def extra_grids(self, side: int) -> dict[str, Tensor]:
        """Truncation (rows psi 1, 0.7, 0.5, 0), style-mixing and W-interpolation grids of the EMA
        generator, `side` seeds wide (at least 2)."""
        side = max(2, side)
        with evaluation_mode(self.generator_ema):
            return {
                "truncation": truncation_grid(self.generator_ema, list(range(side))),
                "style_mixing": style_mixing_grid(self.generator_ema, list(range(side)), list(range(side, 2 * side))),
                "interpolation": interpolation_grid(
                    self.generator_ema, [(2 * i, 2 * i + 1) for i in range(side)], steps=side
                ),
            }

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Generate images in about [-1, 1] from noise."""
        return self.generator(z, labels, generator=self.noise_generator)

    # --- training ---

    def setup(self, stage: str) -> None:
        super().setup(stage)
        check_precision(str(self.trainer.precision))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, labels = self.prepare_batch(batch)
        optimizer_g, optimizer_d = self.optimizers()
        fake = self.generate(len(real), labels)
        parts = self.discriminator_step(real, fake.detach(), labels, optimizer_d)
        self.discriminator_steps += 1
        if self.hparams.r1_gamma > 0 and int(self.discriminator_steps) % self.hparams.r1_interval == 0:
            parts |= self.r1_step(real, labels, optimizer_d)
        parts |= self.generator_step(fake, labels, optimizer_g)
        self.generator_steps += 1
        if self.hparams.path_length_weight > 0 and int(self.generator_steps) % self.hparams.path_length_interval == 0:
            parts |= self.path_length_step(len(real), labels, optimizer_g)
        self.update_generator_ema(len(real) * self.trainer.world_size)
        self.log_dict({f"train/{name}": value for name, value in parts.items()}, prog_bar=True)

    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        """Training fakes from fresh noise, with style mixing; they update the tracked mean w."""
        return self.generate_with_ws(n, labels)[0]

    def generate_with_ws(self, n: int, labels: Tensor | None, track_mean: bool = True) -> tuple[Tensor, Tensor]:
        """(images, ws): style mixing takes the layers from the cutoff on from a second w (section 3.3 of StyleGAN)."""
        mapping, synthesis = self.generator.mapping, self.generator.synthesis
        ws = self.generator.broadcast(mapping(self.noise(n), labels, update_mean=track_mean))
        cutoff = style_mixing_cutoff(ws.shape[1], self.hparams.style_mixing_probability, self.noise_generator)
        if cutoff < ws.shape[1]:
            ws = mix_styles(ws, self.generator.broadcast(mapping(self.noise(n), labels)), cutoff)
        return synthesis(ws, self.noise_generator), ws

    def discriminate(self, images: Tensor, labels: Tensor | None) -> Tensor:
        """D's logits of DiffAugment-ed images (the same augmentation for real and fake, both players)."""
        return self.discriminator(diff_augment(images, self.hparams.augment, self.noise_generator), labels)

    def discriminator_step(
        self, real: Tensor, fake: Tensor, labels: Tensor | None, optimizer: Any
    ) -> dict[str, Tensor]:
        with self.toggled_optimizer(optimizer):
            real_logits, fake_logits = self.discriminate(real, labels), self.discriminate(fake, labels)
            loss = self.discriminator_loss(real_logits, fake_logits)
            self.optimize(loss, "discriminator loss", optimizer)
        return {
            "d_loss": loss.detach(),
            "d_real": mean_discriminator_output(real_logits, self.hparams.loss),
            "d_fake": mean_discriminator_output(fake_logits, self.hparams.loss),
        }

    def r1_step(self, real: Tensor, labels: Tensor | None, optimizer: Any) -> dict[str, Tensor]:
        """gamma/2 R1 times the interval, in float32 even under mixed precision (Mescheder et al. 2018)."""
        with self.toggled_optimizer(optimizer), torch.autocast(self.device.type, enabled=False):
            real = real.detach().float().requires_grad_(True)
            penalty = r1_penalty(self.discriminate(real, labels), real)
            loss = penalty * (self.hparams.r1_gamma / 2) * self.hparams.r1_interval
            self.optimize(loss, "R1 penalty", optimizer)
        return {"r1_penalty": penalty.detach()}

    def generator_step(self, fake: Tensor, labels: Tensor | None, optimizer: Any) -> dict[str, Tensor]:
        with self.toggled_optimizer(optimizer):
            fake_logits = self.discriminate(fake, labels)
            loss = self.generator_loss(fake_logits)
            self.optimize(loss, "generator loss", optimizer)
        return {"g_loss": loss.detach(), "d_fake_after": mean_discriminator_output(fake_logits, self.hparams.loss)}

    def path_length_step(self, n: int, labels: Tensor | None, optimizer: Any) -> dict[str, Tensor]:
        """Path-length penalty on a smaller batch, times weight and interval, in float32 (section 3.2)."""
        n = max(1, n // self.hparams.path_length_batch_shrink)
        labels = labels[:n] if labels is not None else None
        with self.toggled_optimizer(optimizer), torch.autocast(self.device.type, enabled=False):
            images, ws = self.generate_with_ws(n, labels, track_mean=False)
            lengths = path_lengths(images, ws, path_length_noise(images, self.noise_generator))
            penalty, mean = path_length_penalty(lengths, self.path_length_mean, self.hparams.path_length_decay)
            self.path_length_mean.copy_(mean)
            loss = penalty * self.hparams.path_length_weight * self.hparams.path_length_interval
            self.optimize(loss, "path-length penalty", optimizer)
        return {"path_length": lengths.detach().mean(), "path_length_penalty": penalty.detach()}

    def update_generator_ema(self, batch_images: int) -> None:
        beta = half_life_ema_beta(batch_images, int(self.images_seen), self.hparams.ema_kimg, self.hparams.ema_rampup)
        ema_update(self.generator_ema, self.generator, beta)
        self.images_seen += batch_images

    # --- evaluation ---

    def heldout_discriminator_loss(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """The discriminator loss on held-out reals and fakes from noise seeded by the batch index."""
        real, labels = self.prepare_batch(batch)
        noise = torch.Generator().manual_seed(batch_idx)
        z = torch.randn(len(real), self.latent_dim, generator=noise).to(self.device)
        fake = self.generator(z, labels, generator=noise)
        return self.discriminator_loss(self.discriminator(real, labels), self.discriminator(fake, labels))

    # --- setup ---

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        optimizers = super().configure_optimizers()
        intervals = (self.lazy_interval(self.hparams.path_length_weight, self.hparams.path_length_interval),)
        intervals += (self.lazy_interval(self.hparams.r1_gamma, self.hparams.r1_interval),)
        for optimizer, interval in zip(optimizers, intervals, strict=True):
            for group in optimizer.param_groups:
                group["lr"], betas = lazy_regularization_adam(group["lr"], group.get("betas", (0.0, 0.0)), interval)
                if "betas" in group:
                    group["betas"] = betas
        return optimizers

    @staticmethod
    def lazy_interval(weight: float, interval: int) -> int:
        """The interval Adam is rescaled for: 0 when the regularizer is off (no extra steps)."""
        return interval if weight > 0 else 0

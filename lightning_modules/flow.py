"""Normalizing flows trained on the exact negative log-likelihood, reported in bits/dim.

The flow network (RealNVP, Glow) maps a dequantized image u in [0, 1)^D to latents zs, each
standard normal a priori: log p(u) = sum_i log N(zs[i]; 0, I) + log|det dzs/du| (the flow's
logdet, logit-transform Jacobian included). bits/dim = -log p(u) / (D ln 2) + 8 for 8-bit data.
"""

import functools
import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from lightning_modules.networks.flow_layers import (
    ActNorm,
    check_quantized,
    dequantize,
)
from lightning_modules.networks.flows import latent_log_prior
from lightning_modules.objectives.bits_per_dim import bits_per_dim, mean_bits_per_dim
from lightning_modules.training.eval_mode import evaluation_mode
from lightning_modules.training.gradient_clipping import ClipWithModuleDefault
from lightning_modules.training.guards import check_finite
from lightning_modules.training.noise import PerImageNoise
from lightning_modules.training.optimizer_factory import OptimizerFactory, checked_optimizer_factory
from lightning_modules.training.schedules import linear_warmup_factor


class NormalizingFlow(ClipWithModuleDefault, L.LightningModule):
    """Maximum-likelihood training of an invertible flow with ActNorm data-dependent init.

    Capabilities (lightning_modules.interface): ImageSampler, TemperatureSampler, LikelihoodModel.
    """

    def __init__(
        self,
        flow: nn.Module,
        optimizer: OptimizerFactory,
        num_bits: int = 8,
        warmup_steps: int = 200,
        gradient_clip_val: float | None = 50.0,
        # Read by the TemperatureGrid callback's config (callbacks.temperature_grid), kept here
        # so the model config holds every sampling setting and older checkpoints still load.
        sample_temperatures: tuple[float, ...] = (0.5, 0.7, 0.85, 1.0),
        sample_temperature: float = 1.0,
        num_grid_samples: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        # Plain floats, not Hydra's ListConfig: checkpoints must load with weights_only=True.
        sample_temperatures = tuple(float(t) for t in sample_temperatures)
        # logger=False: the run logs its whole config once (run.log_run_config), not these beside it.
        self.save_hyperparameters(ignore=["flow", "optimizer"], logger=False)
        if not 1 <= num_bits <= 16:
            raise ValueError(f"num_bits must be in [1, 16], got {num_bits}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if any(t < 0 for t in [*sample_temperatures, sample_temperature]):
            raise ValueError(f"temperatures must be non-negative, got {sample_temperatures}")
        self.flow = flow
        self.optimizer = checked_optimizer_factory("optimizer", optimizer)
        self.num_classes: int | None = None
        self.num_dims: int = flow.num_dims

    # --- the shared interface ---

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        temperature: float | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """n images in [0, 1]; latents ~ N(0, T^2 I) drawn on CPU with `generator` (Glow 3.4).

        The flow is unconditional: `labels` must be None.
        """
        if labels is not None:
            raise ValueError("NormalizingFlow is unconditional (num_classes=None): sample it without labels")
        temperature = self.sample_temperature if temperature is None else temperature
        with evaluation_mode(self.flow):  # never let sampling initialise ActNorm
            images = self.flow.sample(n, temperature=temperature, generator=generator).float()
        return self.finite_images(images, temperature)

    @property
    def sample_temperature(self) -> float:
        """The temperature `sample` uses when none is given (`model.sample_temperature`)."""
        return self.hparams.sample_temperature

    def likelihood_scale(self) -> str:
        """What `test/bits_per_dim` is measured on."""
        return f"exact, on {self.hparams.num_bits}-bit images with uniform dequantization"

    @staticmethod
    def finite_images(images: Tensor, temperature: float) -> Tensor:
        """Replace NaN pixels by 0 with a warning: far-out latents can overflow the inverse
        (a coupling's 1/scale, the split prior's exp(log sigma)), and one NaN image would
        poison FID/IS for the whole set."""
        nan = torch.isnan(images)
        if nan.any():
            bad = nan.flatten(1).any(1).sum().item()
            rank_zero_warn(
                f"{bad} of {len(images)} flow samples at temperature {temperature:g} had NaN "
                "pixels (the inverse overflowed); they are set to 0. Lower the temperature or "
                "train longer."
            )
        return torch.nan_to_num(images, nan=0.0).clamp(0, 1)

    def forward(self, u: Tensor) -> Tensor:
        """log p(u) in nats per image for dequantized images u in [0, 1)^D."""
        return self.likelihood(u)["log_prob"]

    def likelihood(self, u: Tensor) -> dict[str, Tensor]:
        """Per-image log p(u) split into the latents' prior and the flow's log-determinant."""
        zs, logdet = self.flow(u)
        log_prior = latent_log_prior(zs)
        return {"log_prob": log_prior + logdet, "log_prior": log_prior, "logdet": logdet}

    @torch.no_grad()
    def anomaly_score(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Per-image exact NLL in bits/dim of 8-bit images x in [0, 1]: high for unusual x.

        Dequantization noise comes from `generator`, by default from each image's own evaluation
        noise (as in the test step), so an image's score does not depend on the batch it is scored
        in; ActNorm is never initialised by scoring.
        """
        images = self.checked_images((x.to(self.device), None))
        with evaluation_mode(self.flow):
            if generator is None:
                log_prob = self(self.evaluation_dequantized(images))
            else:
                log_prob = self(dequantize(images, self.hparams.num_bits, generator=generator))
        return bits_per_dim(log_prob, self.num_dims, self.hparams.num_bits)

    # --- training ---

    def on_train_batch_start(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """ActNorm's data-dependent init, on the first real training batch (never on the
        sanity-check batch, which runs in eval mode) and before the first optimiser step.
        The flags live in checkpointed buffers, so a resumed run skips this."""
        if self.needs_actnorm_init():
            images = self.checked_images(batch)
            with torch.no_grad():
                self.flow.train()
                self.flow(dequantize(images, self.hparams.num_bits))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images = self.checked_images(batch) if batch_idx == 0 else batch[0]
        parts = self.likelihood(dequantize(images, self.hparams.num_bits))
        loss = mean_bits_per_dim(parts["log_prob"], self.num_dims, self.hparams.num_bits)
        check_finite("log-determinant", parts["logdet"].mean(), self.global_step)
        check_finite("loss (train bits/dim)", loss, self.global_step)
        self.log_dict(self.named_parts("train", parts), batch_size=len(images))
        self.log("train/bits_per_dim", loss, prog_bar=True, batch_size=len(images))
        return loss

    # --- evaluation: exact NLL with dequantization noise fixed per image, so numbers are reproducible ---

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.evaluate("val", batch, batch_idx)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.evaluate("test", batch, batch_idx)

    def evaluate(self, stage: str, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images = self.checked_images(batch) if batch_idx == 0 else batch[0]
        parts = self.likelihood(self.evaluation_dequantized(images))
        bits = mean_bits_per_dim(parts["log_prob"], self.num_dims, self.hparams.num_bits)
        # Lightning's epoch mean is a batch-size-weighted sum, so a NaN image makes it NaN
        # rather than being dropped: averaging bits/dim after silently dropping NaN images flatters a model.
        logged = self.named_parts(stage, parts)
        self.log_dict(logged, sync_dist=True, batch_size=len(images))
        self.log(f"{stage}/bits_per_dim", bits, prog_bar=True, sync_dist=True, batch_size=len(images))

    # --- helpers ---

    def evaluation_dequantized(self, images: Tensor) -> Tensor:
        """Images dequantized with noise that is a function of each image and the seed alone, so
        test bits/dim does not depend on the batch size, the batch order or the number of processes."""
        noise = PerImageNoise(images, self.hparams.seed).rand(images.shape, batch_dim=0)
        return dequantize(images, self.hparams.num_bits, noise=noise)

    def named_parts(self, stage: str, parts: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-image NLL of the 8-bit image in nats (= bits/dim * D ln 2) and its two terms,
        log-prior and log-det, which are in the [0, 1)^D frame of the flow's input."""
        grid_volume = self.num_dims * self.hparams.num_bits * math.log(2)
        return {
            f"{stage}/nll_nats": grid_volume - parts["log_prob"].mean(),
            f"{stage}/log_prior_nats": parts["log_prior"].mean(),
            f"{stage}/logdet_nats": parts["logdet"].mean(),
        }

    def checked_images(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        images = batch[0]
        check_quantized(images, self.hparams.num_bits)
        if tuple(images.shape[1:]) != tuple(self.flow.image_shape):
            raise ValueError(
                f"The flow was built for images of shape {tuple(self.flow.image_shape)} but the "
                f"data gives {tuple(images.shape[1:])}; set the flow's in_channels/image_size "
                "from the data config."
            )
        return images

    def needs_actnorm_init(self) -> bool:
        return any(not m.initialized for m in self.flow.modules() if isinstance(m, ActNorm))

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer(self.parameters())
        warmup = self.hparams.warmup_steps
        if warmup == 0:
            return {"optimizer": optimizer}
        # Linear warm-up from lr/warmup to lr: Glow's recipe against early divergence.
        factor = functools.partial(linear_warmup_factor, warmup_steps=warmup)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

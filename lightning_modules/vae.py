"""Variational autoencoders trained on the ELBO in nats per image (Kingma & Welling 2014).

One interface for every variant: `encode`, `decode`, `sample`, `reconstruct`, `interpolate`, and
`loss` returning a dict of named parts. beta-VAE is this class with `beta != 1` (the logged
`*/nelbo_nats` stays the true bound, beta=1, so runs with different beta compare); the conditional
VAE is this class with conditional networks (`num_classes` set); the plain autoencoder lives in
autoencoder.py as a small subclass.
"""

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from lightning_modules.networks.checks import check_positive
from lightning_modules.objectives.bits_per_dim import nats_to_bits_per_dim
from lightning_modules.objectives.elbo import (
    beta_vae_objective,
    gaussian_kl_to_standard_normal,
    importance_log_weights,
    importance_weighted_log_likelihood,
    negative_elbo,
    reparameterize,
)
from lightning_modules.objectives.likelihoods import BernoulliLikelihood
from lightning_modules.training.guards import check_finite
from lightning_modules.training.noise import CheckpointedNoise, PerImageNoise
from lightning_modules.training.optimizer_factory import OptimizerFactory, checked_optimizer_factory
from lightning_modules.training.schedules import beta_warmup

Batch = tuple[Tensor, Tensor]
# Where noise comes from: a generator (training, applications) or one stream per image (evaluation).
Noise = torch.Generator | PerImageNoise


def check_networks_agree(encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module) -> None:
    """Encoder, decoder and likelihood must agree on latent size, classes and parameter maps."""
    if encoder.latent_dim != decoder.latent_dim:
        raise ValueError(f"encoder.latent_dim={encoder.latent_dim} but decoder.latent_dim={decoder.latent_dim}")
    if encoder.num_classes != decoder.num_classes:
        raise ValueError(f"encoder.num_classes={encoder.num_classes} but decoder.num_classes={decoder.num_classes}")
    if decoder.params_per_channel != likelihood.params_per_channel:
        raise ValueError(
            f"decoder.params_per_channel={decoder.params_per_channel} but "
            f"{type(likelihood).__name__} needs {likelihood.params_per_channel}"
        )


class VAE(CheckpointedNoise, L.LightningModule):
    """Gaussian-latent VAE with any likelihood; conditional when the networks have `num_classes`.

    Capabilities (lightning_modules.interface): ImageSampler, Reconstructor, LikelihoodModel.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: nn.Module,
        optimizer: OptimizerFactory,
        beta: float = 1.0,
        beta_warmup_steps: int = 0,
        binarize: bool = False,
        iwae_samples: int = 1000,
        iwae_chunk_size: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__()
        # logger=False: the run logs its whole config once (run.log_run_config), not these beside it.
        self.save_hyperparameters(ignore=["encoder", "decoder", "likelihood", "optimizer"], logger=False)
        beta_warmup(0, beta, beta_warmup_steps)  # validates beta >= 0 and warmup_steps >= 0
        check_positive(iwae_samples=iwae_samples, iwae_chunk_size=iwae_chunk_size)
        if binarize and not isinstance(likelihood, BernoulliLikelihood):
            raise ValueError(
                f"binarize=true makes binary data, which needs the Bernoulli likelihood, "
                f"not {type(likelihood).__name__}"
            )
        check_networks_agree(encoder, decoder, likelihood)
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.optimizer = checked_optimizer_factory("optimizer", optimizer)
        self.latent_dim: int = encoder.latent_dim
        self.num_classes: int | None = encoder.num_classes
        # A module-owned generator for training noise (binarization, reparameterization): its
        # state is checkpointed, so a resumed run draws exactly what an uninterrupted run would.
        self.noise_generator = torch.Generator().manual_seed(seed)

    # --- the shared interface ---

    def encode(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The posterior q(z|x) as (mean, log_variance), each (B, latent_dim), in float32.

        float32 even under bf16/16-bit mixed precision: the KL, the log-densities and the
        likelihood are sums over hundreds of terms, and low-precision terms would bias the bound.
        """
        mean, log_variance = self.encoder(x, labels)
        return mean.float(), log_variance.float()

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Likelihood parameters of p(x|z), shape (B, P * C, H, W), in float32 (see `encode`)."""
        return self.decoder(z, labels).float()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None) -> Tensor:
        """n images in [0, 1]: the likelihood's mean at z ~ N(0, I), the usual VAE sample grid.

        Conditional models without `labels` cycle through the classes (0, 1, ..., 0, 1, ...).
        """
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        return self.likelihood.mean(self.decode(z, self.labels_for(n, labels))).float()

    @torch.no_grad()
    def reconstruct(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Decode the posterior mean of x: images in [0, 1] beside their inputs."""
        x = x.to(self.device)
        x = self.prepare_images(x, self.evaluation_noise(x))
        labels = self.labels_for(len(x), labels)
        mean, _ = self.encode(x, labels)
        return self.likelihood.mean(self.decode(mean, labels)).float()

    def likelihood_scale(self) -> str:
        """What `test/bits_per_dim` (the IWAE bound) is per: binary pixels, or pixel values under the likelihood."""
        if self.hparams.binarize:
            return "IWAE upper bound per dynamically binarized pixel; not comparable with 8-bit scores"
        return (
            f"IWAE upper bound per pixel value under {type(self.likelihood).__name__} (8-bit for discretized logistic)"
        )

    @torch.no_grad()
    def interpolate(self, x_start: Tensor, x_end: Tensor, steps: int = 8, labels: Tensor | None = None) -> Tensor:
        """Decode straight lines between posterior means: len(x_start) * steps images, row-major."""
        x_start, x_end = x_start.to(self.device), x_end.to(self.device)
        labels = self.labels_for(len(x_start), labels)
        start, _ = self.encode(self.prepare_images(x_start, self.evaluation_noise(x_start)), labels)
        end, _ = self.encode(self.prepare_images(x_end, self.evaluation_noise(x_end)), labels)
        weights = torch.linspace(0, 1, steps, device=self.device).view(1, steps, 1)
        path = (start[:, None] * (1 - weights) + end[:, None] * weights).flatten(0, 1)
        path_labels = labels.repeat_interleave(steps) if labels is not None else None
        return self.likelihood.mean(self.decode(path, path_labels)).float()

    def loss(
        self,
        x: Tensor,
        labels: Tensor | None = None,
        beta: float = 1.0,
        generator: Noise | None = None,
    ) -> dict[str, Tensor]:
        """One-sample ELBO parts in nats per image; `loss` is the beta-weighted objective."""
        log_likelihood, kl = self.elbo_terms(x, labels, generator)
        return {
            "loss": beta_vae_objective(log_likelihood, kl, beta),
            "nelbo_nats": negative_elbo(log_likelihood, kl),
            "reconstruction_nats": -log_likelihood.mean(),
            "kl_nats": kl.mean(),
        }

    def elbo_terms(
        self, x: Tensor, labels: Tensor | None = None, generator: Noise | None = None
    ) -> tuple[Tensor, Tensor]:
        """Per-image log p(x|z) at one z ~ q(z|x) and KL(q(z|x) || p(z)), each (B,) in nats."""
        mean, log_variance = self.encode(x, labels)
        z = reparameterize(mean, log_variance, self.normal_noise(mean.shape, generator))
        return self.likelihood.log_prob(x, self.decode(z, labels)), gaussian_kl_to_standard_normal(mean, log_variance)

    # --- applications: anomaly scores, imputation, the 2-D latent map ---

    @torch.no_grad()
    def anomaly_score(
        self, x: Tensor, labels: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Per-image one-sample negative ELBO in nats (a bound on -log p(x)): high for unusual x.

        `x` as the datamodules give it. Binarizing models binarize it, and the latent sample is
        drawn, from `generator`, by default from each image's own evaluation noise (as in the test
        step), so an image's score does not depend on the batch it is scored in.
        """
        x = x.to(self.device)
        noise = generator if generator is not None else self.evaluation_noise(x)
        x = self.prepare_images(x, noise)
        log_likelihood, kl = self.elbo_terms(x, self.labels_on_device(labels), noise)
        return kl - log_likelihood

    @torch.no_grad()
    def impute(
        self,
        x: Tensor,
        mask: Tensor,
        steps: int = 20,
        initial: Tensor | float = 0.5,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Fill the pixels where `mask` is True: encode, decode, replace them, repeat.

        The deterministic version of the Markov chain of Rezende et al. (2014, section 5.3), with
        the posterior mean and the likelihood mean in place of samples. Missing pixels start at
        `initial` (a value or an image, e.g. the training mean: then steps=0 is mean-fill);
        observed pixels are returned exactly as given.
        """
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor (True where a pixel is missing), got {mask.dtype}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        x, mask = x.to(self.device), mask.to(self.device)
        initial = torch.as_tensor(initial, dtype=x.dtype, device=self.device)
        labels = self.labels_on_device(labels)
        filled = torch.where(mask, initial, x)
        for _ in range(steps):
            mean, _ = self.encode(filled, labels)
            filled = torch.where(mask, self.likelihood.mean(self.decode(mean, labels)).float(), x)
        return filled

    @torch.no_grad()
    def latent_grid(self, steps: int = 15, extent: float = 2.0) -> Tensor:
        """Decode a steps x steps grid of 2-D latents on [-extent, extent]^2, the learned manifold
        of Kingma & Welling (2014, fig. 4): row-major, z_1 growing to the right, z_2 growing up."""
        if self.latent_dim != 2:
            raise ValueError(f"latent_grid needs a 2-D latent (model.encoder.latent_dim=2), got {self.latent_dim}")
        if self.num_classes is not None:
            raise ValueError("latent_grid is for unconditional VAEs; a conditional one needs a label per cell")
        axis = torch.linspace(-extent, extent, steps)
        z_2, z_1 = torch.meshgrid(axis.flip(0), axis, indexing="ij")
        z = torch.stack([z_1.flatten(), z_2.flatten()], dim=1).to(self.device)
        return self.likelihood.mean(self.decode(z)).float()

    @torch.no_grad()
    def importance_weighted_nll(
        self, x: Tensor, labels: Tensor | None = None, generator: Noise | None = None
    ) -> Tensor:
        """-log p(x) per image from K = iwae_samples importance samples (Burda et al. 2016)."""
        mean, log_variance = self.encode(x, labels)

        def log_weights_for(k: int) -> Tensor:
            z = reparameterize(mean, log_variance, self.normal_noise((k, *mean.shape), generator))
            repeated_labels = labels.repeat(k) if labels is not None else None
            params = self.decode(z.flatten(0, 1), repeated_labels)
            log_likelihood = self.likelihood.log_prob(x.repeat(k, 1, 1, 1), params).view(k, len(x))
            return importance_log_weights(log_likelihood, z, mean, log_variance)

        return -importance_weighted_log_likelihood(
            log_weights_for, self.hparams.iwae_samples, self.hparams.iwae_chunk_size
        )

    # --- training and evaluation ---

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        x, labels = self.prepare_batch(batch, self.noise_generator)
        beta = beta_warmup(self.global_step, self.hparams.beta, self.hparams.beta_warmup_steps)
        parts = self.loss(x, labels, beta)
        check_finite("VAE loss", parts["loss"], self.global_step)
        self.log_dict({f"train/{name}": value for name, value in parts.items()}, prog_bar=True)
        self.log("train/beta", beta)
        return parts["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        noise = self.evaluation_noise(batch[0])
        x, labels = self.prepare_batch(batch, noise)
        self.log_dict(self.evaluation_metrics(x, labels, "val", noise), sync_dist=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        noise = self.evaluation_noise(batch[0])
        x, labels = self.prepare_batch(batch, noise)
        metrics = self.evaluation_metrics(x, labels, "test", noise)
        nll = self.importance_weighted_nll(x, labels, noise)
        metrics["test/iwae_nll_nats"] = nll.mean()
        metrics["test/bits_per_dim"] = nats_to_bits_per_dim(nll.mean(), x[0].numel())
        self.log_dict(metrics, sync_dist=True)

    def evaluation_metrics(self, x: Tensor, labels: Tensor | None, stage: str, generator: Noise) -> dict[str, Tensor]:
        """The true ELBO (beta=1) and its parts, plus the bound in bits/dim."""
        parts = self.loss(x, labels, beta=1.0, generator=generator)
        del parts["loss"]  # at beta=1 it equals nelbo_nats
        parts["nelbo_bits_per_dim"] = nats_to_bits_per_dim(parts["nelbo_nats"], x[0].numel())
        return {f"{stage}/{name}": value for name, value in parts.items()}

    # --- data ---

    def prepare_batch(self, batch: Batch, generator: Noise) -> tuple[Tensor, Tensor | None]:
        images, labels = batch
        return self.prepare_images(images, generator), labels if self.num_classes is not None else None

    def prepare_images(self, images: Tensor, generator: Noise | None = None) -> Tensor:
        """Dynamic binarization (Salakhutdinov & Murray 2008): each pixel is 1 with probability x.

        Training draws fresh pixels every step from the module's noise generator; evaluation passes
        `evaluation_noise`, so every validation and test pass scores the same binary images.
        """
        if not self.hparams.binarize:
            return images
        generator = generator if generator is not None else self.noise_generator
        if isinstance(generator, PerImageNoise):
            uniform = generator.rand(images.shape, batch_dim=0)
        else:
            uniform = torch.rand(images.shape, generator=generator)
        return (uniform.to(images.device) < images).to(images.dtype)

    def normal_noise(self, shape: tuple[int, ...] | torch.Size, generator: Noise | None) -> Tensor:
        """N(0, I) noise of shape (..., B, latent_dim) drawn on the CPU from `generator` (default: the
        module's), then moved."""
        generator = generator if generator is not None else self.noise_generator
        if isinstance(generator, PerImageNoise):
            return generator.randn(shape, batch_dim=len(shape) - 2).to(self.device)
        return torch.randn(tuple(shape), generator=generator).to(self.device)

    def evaluation_noise(self, images: Tensor) -> PerImageNoise:
        """Evaluation noise that is a function of each image and the seed alone: a test score does
        not depend on the batch size, the batch order or the number of DDP processes."""
        return PerImageNoise(images, self.hparams.seed)

    def labels_on_device(self, labels: Tensor | None) -> Tensor | None:
        """Labels for conditional models (their networks say so when they are missing)."""
        return labels.to(self.device) if labels is not None and self.num_classes is not None else None

    def labels_for(self, n: int, labels: Tensor | None) -> Tensor | None:
        if self.num_classes is None:
            return None
        if labels is None:
            labels = torch.arange(n) % self.num_classes
        return labels.to(self.device)

    def configure_optimizers(self) -> Any:
        return self.optimizer(self.parameters())

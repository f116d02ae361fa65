"""The plain autoencoder: encoder, bottleneck, decoder, trained on reconstruction log-likelihood.

It shares the VAE's networks and interface, so the two compare with the same architecture. Its
code is the encoder's mean head (the log-variance head is unused). It has no prior and no bound on
log p(x): its metric is the reconstruction negative log-likelihood -log p(x | z = encoder(x)) in
nats, which is also its anomaly score. `sample` draws codes from a diagonal Gaussian fitted to the
training codes (a running estimate), which shows what the decoder does near the data, not samples
of a generative model.
"""

import torch
from torch import Tensor, nn

from lightning_modules.training.guards import check_finite
from lightning_modules.training.optimizer_factory import OptimizerFactory
from lightning_modules.vae import VAE, Batch, Noise


class Autoencoder(VAE):
    """Deterministic autoencoder with a likelihood-based reconstruction loss in nats per image.

    Capabilities (lightning_modules.interface): ImageSampler, Reconstructor. No LikelihoodModel:
    without a prior it has no bound on log p(x), so it opts out of the VAE's `likelihood_scale`.
    """

    likelihood_scale = None

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: nn.Module,
        optimizer: OptimizerFactory,
        binarize: bool = False,
        code_momentum: float = 0.01,
        seed: int = 0,
    ) -> None:
        super().__init__(encoder, decoder, likelihood, optimizer, binarize=binarize, seed=seed)
        if not 0 < code_momentum <= 1:
            raise ValueError(f"code_momentum must be in (0, 1], got {code_momentum}")
        self.register_buffer("code_mean", torch.zeros(self.latent_dim))
        self.register_buffer("code_variance", torch.ones(self.latent_dim))

    def encode_code(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """The bottleneck code z = encoder(x), shape (B, latent_dim)."""
        code, _ = self.encode(x, labels)
        return code

    def loss(
        self,
        x: Tensor,
        labels: Tensor | None = None,
        beta: float = 1.0,
        generator: Noise | None = None,
    ) -> dict[str, Tensor]:
        """Reconstruction negative log-likelihood in nats per image; deterministic, so `beta` and
        `generator` are unused."""
        reconstruction = self.reconstruction_nll(x, labels).mean()
        return {"loss": reconstruction, "reconstruction_nats": reconstruction}

    def reconstruction_nll(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """-log p(x | z = encoder(x)) per image, in nats, of model-ready (e.g. binarized) x."""
        return -self.likelihood.log_prob(x, self.decode(self.encode_code(x, labels), labels))

    @torch.no_grad()
    def anomaly_score(
        self, x: Tensor, labels: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Per-image reconstruction NLL in nats of x as the datamodules give it: high for inputs
        unlike the training data. Binarizing models binarize x with `generator`, by default with
        each image's own evaluation noise, so an image's score does not depend on its batch."""
        x = x.to(self.device)
        x = self.prepare_images(x, generator if generator is not None else self.evaluation_noise(x))
        return self.reconstruction_nll(x, self.labels_on_device(labels))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None) -> Tensor:
        """Decoded codes drawn from N(code_mean, code_variance) fitted to training codes."""
        noise = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        z = self.code_mean + self.code_variance.sqrt() * noise
        return self.likelihood.mean(self.decode(z, self.labels_for(n, labels))).float()

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        x, labels = self.prepare_batch(batch, self.noise_generator)
        code = self.encode_code(x, labels)
        reconstruction = -self.likelihood.log_prob(x, self.decode(code, labels)).mean()
        check_finite("autoencoder reconstruction loss", reconstruction, self.global_step)
        self.update_code_statistics(code.detach())
        self.log("train/reconstruction_nats", reconstruction, prog_bar=True)
        return reconstruction

    def update_code_statistics(self, code: Tensor) -> None:
        momentum = self.hparams.code_momentum
        self.code_mean.lerp_(code.mean(0), momentum)
        self.code_variance.lerp_(code.var(0, unbiased=False) + 1e-6, momentum)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        noise = self.evaluation_noise(batch[0])
        x, labels = self.prepare_batch(batch, noise)
        self.log_dict(self.evaluation_metrics(x, labels, "test", noise), sync_dist=True)

    def evaluation_metrics(self, x: Tensor, labels: Tensor | None, stage: str, generator: Noise) -> dict[str, Tensor]:
        """Reconstruction NLL only: an autoencoder has no bound on log p(x)."""
        return {f"{stage}/reconstruction_nats": self.loss(x, labels)["reconstruction_nats"]}

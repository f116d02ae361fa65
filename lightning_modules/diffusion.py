"""Denoising diffusion (DDPM, Ho et al. 2020) and flow matching (Lipman et al. 2023; Liu et al. 2023).

Both train one U-Net on images mapped to [-1, 1], keep an EMA copy of it for samples and every
evaluation number, drop labels for classifier-free guidance (Ho & Salimans 2021), and pick their
sampler at sampling time (`configure_sampling`). `test_step` logs `test/bits_per_dim` on the
flows' scale: the DDPM variational bound is a probability mass on the 8-bit grid; flow matching's
exact ODE likelihood is a density on uniformly dequantized images, + 8 bits as for the flows.
The maths lives in objectives/ and samplers/; this file holds the training logic only.
"""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from lightning_modules.networks.flow_layers import check_quantized, dequantize
from lightning_modules.objectives.bits_per_dim import bits_per_dim, nats_to_bits_per_dim
from lightning_modules.objectives.diffusion import (
    LOSS_WEIGHTINGS,
    PREDICTION_TYPES,
    check_choice,
    denoised_and_noise,
    denoising_loss,
    diffuse,
    loss_weight,
    prediction_target,
    reverse_variances,
    stratified_steps,
    variational_bound,
)
from lightning_modules.objectives.diffusion_schedules import DiffusionSchedule, noise_level
from lightning_modules.objectives.flow_matching import (
    check_sigma_min,
    flow_matching_loss,
    flow_matching_path,
    flow_matching_velocity,
)
from lightning_modules.samplers.choices import (
    DIFFUSION_SAMPLERS,
    FLOW_SAMPLERS,
    check_guidance,
    check_sampler,
    check_steps,
)
from lightning_modules.samplers.diffusion import ddim_sample, ddpm_sample
from lightning_modules.samplers.guidance import classifier_free_guidance
from lightning_modules.samplers.ode import ode_log_likelihood, ode_sample
from lightning_modules.training.ema import ema_copy
from lightning_modules.training.gradient_clipping import ClipWithModuleDefault
from lightning_modules.training.guards import check_finite
from lightning_modules.training.noise import CheckpointedNoise, PerImageNoise
from lightning_modules.training.optimizer_factory import OptimizerFactory, checked_optimizer_factory
from lightning_modules.training.schedules import linear_warmup_factor

Batch = tuple[Tensor, Tensor]
OnStep = Callable[[int, Tensor], None] | None
Denoiser = Callable[[Tensor, Tensor], Tensor]
Noise = torch.Generator | PerImageNoise


@dataclass(frozen=True)
class Sampling:
    """How `sample` draws: sampler name, step count (None: the sampler's default), guidance, DDIM's eta."""

    sampler: str
    steps: int | None
    guidance: float = 1.0
    eta: float = 0.0


class DenoisingModel(CheckpointedNoise, ClipWithModuleDefault, L.LightningModule):
    """What DDPM and flow matching share: EMA, label dropout, sampling, optimisation, evaluation.

    Capabilities (lightning_modules.interface): ImageSampler, ConfigurableSampler, LikelihoodModel.
    """

    samplers: tuple[str, ...] = ()
    likelihood_estimate: str  # how each family's test pass estimates the likelihood
    # Checkpoints follow the held-out denoising loss when no sample metric (FID) is computed.
    monitor_without_sample_metrics = ("val/loss", "min")

    def __init__(
        self,
        network: nn.Module,
        optimizer: OptimizerFactory,
        sampler: str,
        sample_steps: int | None,
        guidance: float = 1.0,
        eta: float = 0.0,
        label_dropout: float = 0.1,
        ema_decay: float | None = 0.9999,
        warmup_steps: int = 0,
        gradient_clip_val: float | None = 1.0,
        num_bits: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__()
        # logger=False: the run logs its whole config once (run.log_run_config), not these beside it.
        # Called here, it records the subclass's arguments too (Lightning walks the __init__ frames).
        self.save_hyperparameters(ignore=["network", "optimizer", "shared"], logger=False)
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.network = network
        self.network_ema = ema_copy(network, ema_decay) if ema_decay is not None else None
        self.optimizer = checked_optimizer_factory("optimizer", optimizer)
        self.num_classes: int | None = network.num_classes
        self.image_shape: tuple[int, ...] = tuple(network.image_shape)
        self.num_dims = math.prod(self.image_shape)
        self.noise_generator = torch.Generator().manual_seed(seed)
        # Checked by each family once its own settings exist (`checked_sampling`).
        self.sampling = Sampling(sampler, sample_steps, guidance, eta)

    def likelihood_scale(self) -> str:
        """What `test/bits_per_dim` is measured on: the family's estimate, on the flows' 8-bit scale."""
        return f"{self.likelihood_estimate}, on {self.hparams.num_bits}-bit images with uniform dequantization"

    # --- sampling: the shared interface ---

    def configure_sampling(
        self,
        sampler: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        eta: float | None = None,
    ) -> Sampling:
        """Change how `sample` draws (None keeps a setting; a new sampler without steps takes its
        default step count); checked before anything is drawn."""
        changes = {"sampler": sampler, "steps": steps, "guidance": guidance, "eta": eta}
        changed = replace(self.sampling, **{name: value for name, value in changes.items() if value is not None})
        if sampler is not None and steps is None:
            changed = replace(changed, steps=None)
        self.sampling = self.checked_sampling(changed)
        return self.sampling

    def checked_sampling(self, sampling: Sampling) -> Sampling:
        check_sampler(sampling.sampler, self.samplers)
        if sampling.steps is not None:
            check_steps(sampling.steps)
        check_guidance(sampling.guidance, conditional=self.num_classes is not None)
        if sampling.eta < 0:
            raise ValueError(f"eta must be >= 0 (0: deterministic DDIM, 1: DDPM-like), got {sampling.eta}")
        return sampling

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None) -> Tensor:
        """n images in [0, 1] from the EMA network with the configured sampler.

        Conditional models without `labels` draw them uniformly from `generator`.
        """
        return self.sample_with_steps(n, generator, labels)

    @torch.no_grad()
    def sample_with_steps(
        self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None, on_step: OnStep = None
    ) -> Tensor:
        """`sample`, and `on_step(index, x)` sees every intermediate state in [-1, 1]."""
        start = torch.randn(n, *self.image_shape, generator=generator).to(self.device)
        if self.num_classes is not None and labels is None:
            labels = torch.randint(self.num_classes, (n,), generator=generator)
        labels = labels.to(self.device) if labels is not None else None
        network = self.evaluation_network()
        was_training = network.training
        network.eval()
        try:
            guided = classifier_free_guidance(network, labels, self.sampling.guidance)
            images = self.generate(guided, start, generator, on_step)
        finally:
            network.train(was_training)
        return ((images.float() + 1) / 2).clamp(0, 1)

    def generate(self, network: Denoiser, start: Tensor, generator: torch.Generator | None, on_step: OnStep) -> Tensor:
        """Carry noise `start` to images in [-1, 1] with the configured sampler; `network(x, time)`."""
        raise NotImplementedError

    def sampling_step_count(self) -> int:
        """How many states `sample_with_steps` passes to `on_step` with the configured sampler."""
        raise NotImplementedError

    def evaluation_network(self) -> nn.Module:
        """The EMA network (samples, likelihoods, held-out loss), or the network when EMA is off."""
        return self.network_ema.module if self.network_ema is not None else self.network

    # --- training ---

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        images, labels = self.prepare_batch(batch, check=batch_idx == 0)
        labels = self.drop_labels(labels)
        loss = self.loss(self.network, images, labels, self.noise_generator)
        check_finite("loss", loss, self.global_step)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(images))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        if self.network_ema is not None:
            self.network_ema.update_parameters(self.network)

    def drop_labels(self, labels: Tensor | None) -> Tensor | None:
        """Each label replaced by the "no label" token with probability label_dropout (Ho & Salimans 2021)."""
        if labels is None or self.hparams.label_dropout == 0:
            return labels
        dropped = torch.rand(len(labels), generator=self.noise_generator).to(labels.device) < self.hparams.label_dropout
        return torch.where(dropped, torch.full_like(labels, self.num_classes), labels)

    def loss(self, network: nn.Module, images: Tensor, labels: Tensor | None, generator: Noise) -> Tensor:
        """The training objective, noise drawn from `generator` (training) or per-image streams (validation)."""
        raise NotImplementedError

    # --- evaluation ---

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """The training loss of the EMA network with per-image noise and times, so it is reproducible."""
        images, labels = self.prepare_batch(batch, check=batch_idx == 0)
        loss = self.loss(self.evaluation_network(), images, labels, PerImageNoise(images, self.hparams.seed))
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(images))

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        images, _ = self.prepare_batch(batch, check=batch_idx == 0)
        network = self.evaluation_network()
        was_training = network.training
        network.eval()
        try:
            metrics = self.likelihood_metrics(network, images, PerImageNoise(images, self.hparams.seed + 1))
        finally:
            network.train(was_training)
        # Lightning's epoch mean is batch-size weighted, and a NaN image makes it NaN (never dropped).
        for name, value in metrics.items():
            self.log(f"test/{name}", value.float().mean(), sync_dist=True, batch_size=len(images))

    def likelihood_metrics(self, network: nn.Module, images: Tensor, noise: PerImageNoise) -> dict[str, Tensor]:
        """Per-image likelihood numbers, `bits_per_dim` among them. Conditional models are scored
        with the "no label" token: the marginal p(x), comparable with unconditional families."""
        raise NotImplementedError

    def prepare_batch(self, batch: Batch, check: bool) -> tuple[Tensor, Tensor | None]:
        """Images in [-1, 1] (checked on the 8-bit grid when `check`) and the labels if conditional."""
        images, labels = batch
        if check:
            check_quantized(images, self.hparams.num_bits)
            if tuple(images.shape[1:]) != self.image_shape:
                raise ValueError(
                    f"The U-Net was built for images of shape {self.image_shape} but the data gives "
                    f"{tuple(images.shape[1:])}; set its in_channels/image_size from the data config."
                )
        return images * 2 - 1, labels if self.num_classes is not None else None

    # --- optimisation ---

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer(self.network.parameters())
        warmup = self.hparams.warmup_steps
        if warmup == 0:
            return {"optimizer": optimizer}
        # Linear warm-up of the learning rate, as Ho et al. 2020 (5000 steps on CIFAR-10).
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, functools.partial(linear_warmup_factor, warmup_steps=warmup)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def uniform(generator: Noise, shape: tuple[int, ...], device: torch.device) -> Tensor:
    """U[0, 1) draws from a training generator or from per-image streams (batch along dim 0)."""
    if isinstance(generator, PerImageNoise):
        return generator.rand(shape).to(device)
    return torch.rand(shape, generator=generator).to(device)


def gaussian(generator: Noise, shape: tuple[int, ...], device: torch.device) -> Tensor:
    """N(0, 1) draws from a training generator or from per-image streams (batch along dim 0)."""
    if isinstance(generator, PerImageNoise):
        return generator.randn(shape).to(device)
    return torch.randn(shape, generator=generator).to(device)


class DDPM(DenoisingModel):
    """Denoising diffusion probabilistic model; samplers "ddpm" (ancestral, T steps) and "ddim"."""

    samplers = DIFFUSION_SAMPLERS
    likelihood_estimate = "variational upper bound (Ho et al. 2020, discretized Gaussian decoder)"

    def __init__(
        self,
        network: nn.Module,
        optimizer: OptimizerFactory,
        num_timesteps: int = 1000,
        schedule: str = "linear",
        prediction_type: str = "epsilon",
        loss_weighting: str = "unweighted",
        reverse_variance: str = "large",
        clip_denoised: bool = True,
        bound_steps: int | None = None,
        sampler: str = "ddim",
        sample_steps: int | None = 50,
        **shared: Any,
    ) -> None:
        super().__init__(network, optimizer, sampler, sample_steps, **shared)
        self.schedule = DiffusionSchedule.named(schedule, num_timesteps)
        check_choice("prediction type", prediction_type, PREDICTION_TYPES)
        check_choice("loss weighting", loss_weighting, LOSS_WEIGHTINGS)
        self.variances = reverse_variances(self.schedule, reverse_variance)
        if bound_steps is not None:
            stratified_steps(num_timesteps, bound_steps, torch.zeros(bound_steps, 1))  # checks the range
        self.sampling = self.checked_sampling(self.sampling)

    def checked_sampling(self, sampling: Sampling) -> Sampling:
        sampling = super().checked_sampling(sampling)
        if sampling.steps is not None:
            check_steps(sampling.steps, self.schedule.num_steps)
        if sampling.sampler == "ddpm" and sampling.steps not in (None, self.schedule.num_steps):
            raise ValueError(
                f"The ancestral ddpm sampler takes all T={self.schedule.num_steps} steps, not steps={sampling.steps}; "
                "use sampler=ddim with eta=1 for an ancestral sampler on fewer steps."
            )
        return sampling

    def loss(self, network: nn.Module, images: Tensor, labels: Tensor | None, generator: Noise) -> Tensor:
        """Ho et al. 2020's L_simple (algorithm 1) for the configured target and weighting, in float32."""
        batch = len(images)
        steps = (uniform(generator, (batch,), images.device) * self.schedule.num_steps).long()
        steps = steps.clamp(max=self.schedule.num_steps - 1)
        noise = gaussian(generator, tuple(images.shape), images.device)
        xt = diffuse(images, steps, noise, self.schedule)
        level = noise_level(self.schedule, steps, images)
        target = prediction_target(self.hparams.prediction_type, images, noise, level)
        weight = loss_weight(self.hparams.prediction_type, self.hparams.loss_weighting, level)
        return denoising_loss(network(xt, steps, labels), target, weight)

    def predictor(self, network: Denoiser) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """(x_t, steps) -> (x_0, epsilon) from the network's float32 output, in x_t's dtype."""

        def predict(xt: Tensor, steps: Tensor) -> tuple[Tensor, Tensor]:
            output = network(xt.float(), steps.to(xt.device)).to(xt.dtype)
            return denoised_and_noise(self.hparams.prediction_type, output, xt, noise_level(self.schedule, steps, xt))

        return predict

    def sampling_step_count(self) -> int:
        if self.sampling.sampler == "ddpm":
            return self.schedule.num_steps
        return self.sampling.steps or self.hparams.sample_steps or self.schedule.num_steps

    def generate(self, network: Denoiser, start: Tensor, generator: torch.Generator | None, on_step: OnStep) -> Tensor:
        predict = self.predictor(network)
        clip = self.hparams.clip_denoised
        if self.sampling.sampler == "ddpm":
            return ddpm_sample(predict, start, self.schedule, self.variances, generator, clip, on_step)
        steps = self.sampling_step_count()
        return ddim_sample(predict, start, self.schedule, steps, self.sampling.eta, generator, clip, on_step)

    def likelihood_metrics(self, network: nn.Module, images: Tensor, noise: PerImageNoise) -> dict[str, Tensor]:
        """The variational bound in nats and bits/dim (exact sum, or `bound_steps` strata per image)."""
        predict = self.predictor(network)
        transition_steps = None
        if self.hparams.bound_steps is not None:
            draws = noise.rand((self.hparams.bound_steps, len(images)), batch_dim=1)
            transition_steps = stratified_steps(self.schedule.num_steps, self.hparams.bound_steps, draws)

        def draw_noise() -> Tensor:
            return noise.randn(tuple(images.shape)).to(images.device, torch.float64)

        parts = variational_bound(
            lambda xt, steps: predict(xt, steps)[0],
            images.double(),
            self.schedule,
            self.variances,
            draw_noise,
            transition_steps,
            self.hparams.num_bits,
        )
        nats = parts["nll_bound_nats"]
        return {
            "bits_per_dim": nats_to_bits_per_dim(nats, self.num_dims),
            "nll_bound_nats": nats,
            "prior_nats": parts["prior_nats"],
            "decoder_nats": parts["decoder_nats"],
        }


class FlowMatching(DenoisingModel):
    """Conditional flow matching on the rectified-flow path; samplers "euler" and "heun" (ODE)."""

    samplers = FLOW_SAMPLERS
    likelihood_estimate = "ODE likelihood (instantaneous change of variables, seeded Hutchinson trace)"
    # The network sees t in [0, 1] scaled to DDPM's step range, so the sinusoidal embedding's
    # frequencies cover the same span for both families.
    time_scale = 999.0

    def __init__(
        self,
        network: nn.Module,
        optimizer: OptimizerFactory,
        sigma_min: float = 0.0,
        likelihood_steps: int = 50,
        likelihood_solver: str = "heun",
        num_probes: int = 1,
        sampler: str = "heun",
        sample_steps: int | None = 50,
        **shared: Any,
    ) -> None:
        check_sigma_min(sigma_min)
        check_steps(likelihood_steps)
        check_sampler(likelihood_solver, FLOW_SAMPLERS)
        if num_probes < 1:
            raise ValueError(f"num_probes must be >= 1, got {num_probes}")
        super().__init__(network, optimizer, sampler, sample_steps, **shared)
        self.sampling = self.checked_sampling(self.sampling)

    def velocity(self, network: Denoiser) -> Callable[[Tensor, Tensor], Tensor]:
        """(x, t) -> the network's velocity at t in [0, 1], in float32."""
        return lambda x, t: network(x, t * self.time_scale).float()

    def dequantized(self, images: Tensor, generator: Noise) -> Tensor:
        """Uniformly dequantized images mapped to [-1, 1): the density the ODE likelihood scores."""
        pixels = (images + 1) / 2
        if isinstance(generator, PerImageNoise):
            levels = 2**self.hparams.num_bits
            return (
                2 * (torch.round(pixels * (levels - 1)) + generator.rand(tuple(images.shape)).to(images)) / levels - 1
            )
        return 2 * dequantize(pixels, self.hparams.num_bits, generator) - 1

    def loss(self, network: nn.Module, images: Tensor, labels: Tensor | None, generator: Noise) -> Tensor:
        """E ||v(x_t, t) - (x_1 - (1 - sigma_min) x_0)||^2 with t ~ U[0, 1] (Lipman et al. 2023, eq. 23), float32.

        Trained on dequantized images, so the learnt density is the one the likelihood scores.
        """
        data = self.dequantized(images, generator)
        time = uniform(generator, (len(images),), images.device)
        noise = gaussian(generator, tuple(images.shape), images.device)
        sigma_min = self.hparams.sigma_min
        xt = flow_matching_path(data, noise, time, sigma_min)
        predicted = network(xt, time * self.time_scale, labels)
        return flow_matching_loss(predicted, flow_matching_velocity(data, noise, sigma_min))

    def sampling_step_count(self) -> int:
        return self.sampling.steps or self.hparams.sample_steps or 50

    def generate(self, network: Denoiser, start: Tensor, generator: torch.Generator | None, on_step: OnStep) -> Tensor:
        steps = self.sampling_step_count()
        return ode_sample(self.velocity(network), start, steps, self.sampling.sampler, on_step)

    def likelihood_metrics(self, network: nn.Module, images: Tensor, noise: PerImageNoise) -> dict[str, Tensor]:
        """Exact ODE log-likelihood of dequantized images, Hutchinson probes drawn per image."""
        data = self.dequantized(images, noise)
        signs = noise.rand((self.hparams.num_probes, *images.shape), batch_dim=1) < 0.5
        probes = (signs.float() * 2 - 1).to(images)
        velocity = self.velocity(network)
        log_density = ode_log_likelihood(
            velocity, data, self.hparams.likelihood_steps, probes, self.hparams.likelihood_solver
        )
        # u = (x + 1) / 2 in [0, 1)^D: log p(u) = log p(x) + D log 2, then bits/dim as the flows.
        log_prob = log_density + self.num_dims * math.log(2)
        bits = bits_per_dim(log_prob, self.num_dims, self.hparams.num_bits)
        return {"bits_per_dim": bits, "nll_nats": bits * self.num_dims * math.log(2)}

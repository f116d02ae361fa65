"""The capabilities a family's LightningModule offers, written down as Protocols that tools depend on.

Evaluation (`genlab/evaluation/`), the grid callbacks and the notebooks ask `isinstance(module,
ImageSampler)` and so on, never which class a module is, so a new family only has to implement
these members to be sampled, scored and drawn like the others. A module implements a capability
by having its members (structural typing); `tests/tooling/test_interface.py` checks that each
family has exactly the capabilities its docstring claims, with compatible signatures.

Images are float tensors of shape (N, C, H, W) with values in [0, 1], on the module's device.
"""

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class ImageSampler(Protocol):
    """Draws new images: what sample grids, FID/IS/KID, precision/recall and mode coverage need."""

    num_classes: int | None
    """Number of classes a conditional model takes labels of; None for an unconditional one."""

    def sample(self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None) -> Tensor:
        """`n` images in [0, 1] on the module's device, without gradients and in eval mode.

        Random draws come from `generator` (a CPU generator), so the same seed gives the same images.
        `labels` (n class indices) choose the classes of a conditional model; None lets it pick them.
        An unconditional model takes None only.
        """
        ...


@runtime_checkable
class TemperatureSampler(ImageSampler, Protocol):
    """An ImageSampler whose latents can be drawn at a temperature (flows): `make sample` draws one row per value."""

    sample_temperature: float
    """The temperature `sample` uses when none is given."""

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
        temperature: float | None = None,
    ) -> Tensor:
        """As `ImageSampler.sample`, with the prior's standard deviation scaled by `temperature`."""
        ...


@runtime_checkable
class ConfigurableSampler(ImageSampler, Protocol):
    """An ImageSampler whose sampling procedure is chosen after training (diffusion, flow matching):
    `make evaluate` and `make sample` pass `sampler=`, `steps=`, `guidance=` and `eta=` to it."""

    def configure_sampling(
        self,
        sampler: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        eta: float | None = None,
    ) -> Any:
        """Change how `sample` draws: the sampler's name, its step count, the classifier-free
        guidance scale and DDIM's eta; None keeps a setting. Raises ValueError naming a bad
        setting before anything is drawn; returns the settings now in use."""
        ...


@runtime_checkable
class LikelihoodModel(Protocol):
    """Scores held-out data by its likelihood: its test pass (`Trainer.test`) logs `test/bits_per_dim`.

    That is -log p(x) of each test image (exact, or an upper bound the module documents) divided by
    D ln 2, D = C x H x W, averaged over the test set; evaluation copies every `test/` metric the
    pass logs into its report and fails if `test/bits_per_dim` is missing.
    """

    def likelihood_scale(self) -> str:
        """One line saying what `test/bits_per_dim` is measured on, so numbers are compared fairly
        (e.g. exact, on 8-bit images with uniform dequantization; or a bound per binarized pixel)."""
        ...


@runtime_checkable
class Reconstructor(Protocol):
    """Encodes and decodes images: reconstruction grids; its test pass logs `test/reconstruction_nats`."""

    def reconstruct(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Reconstructions in [0, 1] of images `x` in [0, 1] (any device), on the module's device.
        `labels` are the classes of `x` for a conditional model, else None."""
        ...


@runtime_checkable
class Translator(Protocol):
    """Translates images between two domains (CycleGAN): translation metrics and grids."""

    domains: tuple[str, str]
    """The names of the two domains, as the datamodule's batches key them (("A", "B"))."""

    feature_extractor: Any
    """The `FeatureExtractor` that scores translations with `features=classifier`, or None."""

    def translate(self, images: Tensor, source: str) -> Tensor:
        """`images` in [0, 1] of domain `source` (any device) translated to the other domain:
        images in [0, 1] on the module's device, without gradients and in eval mode."""
        ...


@runtime_checkable
class ExtraGrids(Protocol):
    """A sampler with pictures of its own besides the sample grid (StyleGAN2: truncation, style
    mixing, interpolation in W); `make sample` writes each beside the sample grid."""

    def extra_grids(self, side: int) -> dict[str, Tensor]:
        """Named (C, H, W) grids in [0, 1] on the CPU, each about `side` images wide; the name becomes
        the file suffix (`<checkpoint>_<name>.png`)."""
        ...

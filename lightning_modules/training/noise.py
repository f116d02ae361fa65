"""Training noise that survives a resume (a module-owned generator, seeded per rank, checkpointed),
and evaluation noise that is a function of each image alone."""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


class CheckpointedNoise:
    """Mixin for LightningModules that draw training noise from `self.noise_generator`.

    The generator is seeded with `hparams.seed + global_rank` (each DDP rank draws its own noise)
    and saved in checkpoints, so a resumed run draws exactly the noise an uninterrupted run would.
    """

    noise_generator: torch.Generator

    def setup(self, stage: str) -> None:
        self.noise_generator.manual_seed(self.hparams.seed + self.global_rank)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["noise_generator_state"] = self.noise_generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "noise_generator_state" in checkpoint:
            self.noise_generator.set_state(checkpoint["noise_generator_state"])
        if self.global_rank > 0:  # the checkpoint holds rank 0's state; other ranks need their own
            self.noise_generator.manual_seed(self.hparams.seed + self.global_rank + 7919 * checkpoint["global_step"])


class PerImageNoise:
    """One random stream per image, seeded by the image's own pixels and `seed`.

    Evaluation noise (binarization, latent samples) drawn from it is the same for an image
    whichever batch, batch size, order or DDP process it lands in, so an evaluation score does not
    depend on how the evaluation was run. Batches carry no dataset index; the pixels identify the
    image (identical images get identical noise, which changes no expectation).
    """

    def __init__(self, images: Tensor, seed: int) -> None:
        self.generators = [torch.Generator().manual_seed(int(s)) for s in pixel_seeds(images, seed)]

    def rand(self, shape: tuple[int, ...] | torch.Size, batch_dim: int = 0) -> Tensor:
        """Uniform [0, 1) noise of `shape`; slice i along `batch_dim` comes from image i's stream."""
        return self._draw(torch.rand, shape, batch_dim)

    def randn(self, shape: tuple[int, ...] | torch.Size, batch_dim: int = 0) -> Tensor:
        """N(0, 1) noise of `shape`; slice i along `batch_dim` comes from image i's stream."""
        return self._draw(torch.randn, shape, batch_dim)

    def _draw(self, sampler: Callable[..., Tensor], shape: tuple[int, ...] | torch.Size, batch_dim: int) -> Tensor:
        shape = tuple(shape)
        if shape[batch_dim] != len(self.generators):
            raise ValueError(f"noise of shape {shape} is for {shape[batch_dim]} images, not {len(self.generators)}")
        per_image = shape[:batch_dim] + shape[batch_dim + 1 :]
        return torch.stack([sampler(per_image, generator=generator) for generator in self.generators], dim=batch_dim)


def pixel_seeds(images: Tensor, seed: int) -> Tensor:
    """A 62-bit seed per image from its pixels (16-bit quantised) and `seed`, in exact integer arithmetic."""
    pixels = (images.detach().float().cpu().flatten(1).clamp(0, 1) * 65535).round().long()
    weights = torch.randint(1, 2**31, (pixels.shape[1],), generator=torch.Generator().manual_seed(seed))
    return torch.remainder((pixels * weights).sum(dim=1) + seed, 2**62)

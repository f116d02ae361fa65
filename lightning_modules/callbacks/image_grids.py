"""Logger-agnostic image logging: W&B image, TensorBoard image, and always a PNG in the run folder."""

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid


def logging_step(trainer: L.Trainer) -> int:
    """The step Lightning logs metrics at (batches that stepped; GANs' global_step counts 2 per batch)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def grid_to_uint8(grid: Tensor) -> np.ndarray:
    """A (C, H, W) grid in [0, 1] as the (H, W, 3) uint8 pixels `save_image` would write.

    Every logger gets these bytes, not floats: wandb casts a float tensor to uint8 without scaling
    (a grid in [0, 1] arrives black), so W&B, TensorBoard and the PNG must share one conversion.
    """
    pixels = grid.detach().float().cpu().mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    if pixels.shape[0] == 1:
        pixels = pixels.expand(3, -1, -1)
    return pixels.permute(1, 2, 0).numpy()


@rank_zero_only
def log_image(trainer: L.Trainer, key: str, grid: Tensor, caption: str | None = None) -> Path:
    """Send a grid in [0, 1] to every image-capable logger and save it as PNG under the run folder.

    `caption` says what the rows and columns are; W&B shows it under the image.
    """
    step = logging_step(trainer)
    pixels = grid_to_uint8(grid)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[pixels], step=step, caption=[caption])
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, pixels, step, dataformats="HWC")
    path = Path(trainer.default_root_dir) / "images" / f"{key.replace('/', '_')}_step{step:07d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def sample_grid_caption(module: L.LightningModule, seed: int) -> str:
    """What `sample_grid` drew: for conditional models, which class each row is."""
    num_classes = getattr(module, "num_classes", None)
    caption = f"samples from fixed noise (seed {seed})"
    if num_classes is None:
        return caption
    return f"{caption}; one row per class: " + ", ".join(str(label) for label in range(num_classes))


def sample_grid(module: L.LightningModule, num_samples: int, seed: int) -> Tensor:
    """Samples from fixed noise; for conditional models one row per class."""
    generator = torch.Generator().manual_seed(seed)
    num_classes = getattr(module, "num_classes", None)
    if num_classes is None:
        return make_grid(module.sample(num_samples, generator=generator), nrow=int(num_samples**0.5))
    per_class = max(1, num_samples // num_classes)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    return make_grid(module.sample(len(labels), generator=generator, labels=labels), nrow=per_class)


class SampleGrid(Callback):
    """Logs `module.sample` from fixed noise every N training batches and after each validation."""

    def __init__(self, every_n_batches: int = 500, num_samples: int = 64, seed: int = 0) -> None:
        if every_n_batches <= 0 or num_samples <= 0:
            raise ValueError("every_n_batches and num_samples must be positive")
        self.every_n_batches, self.num_samples, self.seed = every_n_batches, num_samples, seed

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        due = (trainer.fit_loop.epoch_loop.total_batch_idx + 1) % self.every_n_batches == 0
        if due and trainer.is_global_zero:  # only rank 0 logs, so only rank 0 samples
            self.log_grid(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.is_global_zero:
            self.log_grid(trainer, pl_module)

    def log_grid(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        grid = sample_grid(pl_module, self.num_samples, self.seed)
        log_image(trainer, "samples", grid, sample_grid_caption(pl_module, self.seed))


# --- CycleGAN: translation grids ---


TRANSLATION_CAPTION = "rows: real A / fake B / rec A / real B / fake A / rec B (one column per image pair)"


class TranslationGrid(Callback):
    """Logs rows real A, fake B, reconstructed A, real B, fake A, reconstructed B every N batches.

    The same validation images are used every time (the first `num_images` pairs), so grids
    compare across steps. Needs a module with `translation_grid_rows(real_a, real_b)`.
    """

    def __init__(self, every_n_batches: int = 500, num_images: int = 4) -> None:
        if every_n_batches <= 0 or num_images <= 0:
            raise ValueError("every_n_batches and num_images must be positive")
        self.every_n_batches, self.num_images = every_n_batches, num_images

    def grid(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Tensor:
        dataset = trainer.datamodule.val_set
        pairs = [dataset[index] for index in range(min(self.num_images, len(dataset)))]
        real_a = torch.stack([pair["A"] for pair in pairs])
        real_b = torch.stack([pair["B"] for pair in pairs])
        rows = pl_module.translation_grid_rows(real_a, real_b)
        return make_grid(torch.cat(rows), nrow=len(pairs))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        due = (trainer.fit_loop.epoch_loop.total_batch_idx + 1) % self.every_n_batches == 0
        if due and trainer.is_global_zero:
            log_image(trainer, "translations", self.grid(trainer, pl_module), TRANSLATION_CAPTION)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.is_global_zero:
            log_image(trainer, "translations", self.grid(trainer, pl_module), TRANSLATION_CAPTION)

"""Pictures of diffusion and flow-matching models: the denoising process, noise to image."""

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torchvision.utils import make_grid

from lightning_modules.callbacks.image_grids import log_image


def denoising_process_grid(module: L.LightningModule, num_samples: int, num_columns: int, seed: int) -> Tensor:
    """One row per sample: its starting noise, then `num_columns - 1` states evenly spaced over the
    sampler's steps, the last one the image. Conditional models cycle through the classes."""
    if num_columns < 2:
        raise ValueError(f"num_columns must be >= 2 (noise and image), got {num_columns}")
    total = module.sampling_step_count()
    wanted = set(torch.linspace(0, total - 1, num_columns - 1).round().long().tolist())
    columns = [torch.randn(num_samples, *module.image_shape, generator=torch.Generator().manual_seed(seed))]

    def keep(index: int, x: Tensor) -> None:
        if index in wanted:
            columns.append(x.detach().float().cpu())

    labels = torch.arange(num_samples) % module.num_classes if module.num_classes is not None else None
    module.sample_with_steps(num_samples, torch.Generator().manual_seed(seed), labels, on_step=keep)
    frames = torch.stack([((column + 1) / 2).clamp(0, 1) for column in columns], dim=1)
    return make_grid(frames.flatten(0, 1), nrow=len(columns))


class DenoisingProcessGrid(Callback):
    """After each validation, logs `denoising_process_grid` from fixed noise as "denoising_process"."""

    def __init__(self, num_samples: int = 8, num_columns: int = 10, seed: int = 0) -> None:
        if num_samples <= 0 or num_columns < 2:
            raise ValueError("num_samples must be positive and num_columns >= 2")
        self.num_samples, self.num_columns, self.seed = num_samples, num_columns, seed

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        grid = denoising_process_grid(pl_module, self.num_samples, self.num_columns, self.seed)
        sampling = pl_module.sampling
        caption = (
            f"one row per sample, noise (left) to image (right), {sampling.sampler} sampler over "
            f"{pl_module.sampling_step_count()} steps"
        )
        log_image(trainer, "denoising_process", grid, caption)

"""Image logging for models with an encoder: reconstructions, interpolations, 2-D latent scatter.

They use only the module's `reconstruct(x, labels)`, `interpolate(x_start, x_end, steps, labels)`
and `encode(x, labels)`, and log through `callbacks.log_image`, so every logger gets them.
The images come from the first validation batch (the validation loader is not shuffled), so the
same inputs appear at every epoch.
"""

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torchvision.utils import make_grid

from lightning_modules.callbacks.image_grids import log_image

# Tableau's 10 categorical colours, one per class (cycled beyond 10), and their names for captions.
CLASS_COLOUR_NAMES = ("blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "olive", "cyan")
CLASS_COLOURS = (
    torch.tensor(
        [
            [31, 119, 180],
            [255, 127, 14],
            [44, 160, 44],
            [214, 39, 40],
            [148, 103, 189],
            [140, 86, 75],
            [227, 119, 194],
            [127, 127, 127],
            [188, 189, 34],
            [23, 190, 207],
        ]
    )
    .float()
    .div(255)
)


def scatter_image(points: Tensor, labels: Tensor, size: int = 256, dot: int = 1) -> Tensor:
    """Rasterise 2-D points coloured by class on a white (3, size, size) image in [0, 1].

    Axes are centred at the origin and span +-max(|point|), so the prior N(0, I) sits mid-image.
    """
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"A latent scatter needs points of shape (N, 2), got {tuple(points.shape)}")
    points = points.detach().float().cpu()
    extent = points.abs().max().clamp(min=1e-6)
    pixels = ((points / extent + 1) / 2 * (size - 1)).round().long()
    image = torch.ones(3, size, size)
    colours = CLASS_COLOURS[labels.cpu().long() % len(CLASS_COLOURS)]
    for dx in range(-dot, dot + 1):
        for dy in range(-dot, dot + 1):
            column = (pixels[:, 0] + dx).clamp(0, size - 1)
            row = (size - 1 - pixels[:, 1] + dy).clamp(0, size - 1)  # y grows upwards
            image[:, row, column] = colours.T
    return image


class FirstBatchCallback(Callback):
    """Keeps the first `num_images` images and labels of each validation pass."""

    def __init__(self, num_images: int) -> None:
        if num_images <= 0:
            raise ValueError(f"num_images must be positive, got {num_images}")
        self.num_images = num_images
        self.images: Tensor | None = None
        self.labels: Tensor | None = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0 and trainer.is_global_zero:  # only rank 0 logs images, so only rank 0 keeps them
            images, labels = batch
            self.images, self.labels = images[: self.num_images], labels[: self.num_images]

    def model_labels(self, pl_module: L.LightningModule) -> Tensor | None:
        return self.labels if getattr(pl_module, "num_classes", None) is not None else None


class ReconstructionGrid(FirstBatchCallback):
    """Inputs and their reconstructions in alternating rows, after each validation pass."""

    def __init__(self, num_images: int = 32, per_row: int = 8) -> None:
        super().__init__(num_images)
        self.per_row = per_row

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.images is None:
            return
        inputs = self.images.to(pl_module.device)
        reconstructions = pl_module.reconstruct(inputs, self.model_labels(pl_module)).to(inputs.dtype)
        rows = []
        for start in range(0, len(inputs), self.per_row):
            rows += [
                inputs[start : start + self.per_row],
                reconstructions[start : start + self.per_row],
            ]
        grid = make_grid(torch.cat(rows).cpu(), nrow=self.per_row)
        log_image(trainer, "reconstructions", grid, "rows alternate: validation images / their reconstructions")


class InterpolationGrid(FirstBatchCallback):
    """Decoded straight lines between the posterior means of pairs of validation images."""

    def __init__(self, num_pairs: int = 8, steps: int = 10) -> None:
        super().__init__(2 * num_pairs)
        if steps < 2:
            raise ValueError(f"steps must be at least 2, got {steps}")
        self.steps = steps

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.images is None or len(self.images) < 2:
            return
        half = len(self.images) // 2
        labels = self.model_labels(pl_module)
        images = self.images.to(pl_module.device)
        path = pl_module.interpolate(
            images[:half],
            images[half : 2 * half],
            self.steps,
            labels[:half] if labels is not None else None,
        )
        caption = f"each row: {self.steps} decoded steps on the line between two validation images' posterior means"
        log_image(trainer, "interpolations", make_grid(path.cpu(), nrow=self.steps), caption)


class LatentScatter(Callback):
    """With a 2-D latent: posterior means of the test set (and validation set) coloured by class."""

    def __init__(self, max_points: int = 5000) -> None:
        self.max_points = max_points
        self.means: list[Tensor] = []
        self.labels: list[Tensor] = []

    def collect(self, pl_module: L.LightningModule, batch) -> None:
        if not pl_module.trainer.is_global_zero:  # only rank 0 logs the scatter
            return
        if pl_module.latent_dim != 2 or sum(len(m) for m in self.means) >= self.max_points:
            return
        images, labels = batch
        condition = labels if getattr(pl_module, "num_classes", None) is not None else None
        with torch.no_grad():
            mean, _ = pl_module.encode(pl_module.prepare_images(images, torch.Generator().manual_seed(0)), condition)
        self.means.append(mean.cpu())
        self.labels.append(labels.cpu())

    def flush(self, trainer: L.Trainer, key: str) -> None:
        if self.means:
            caption = "posterior means, one colour per class: " + ", ".join(
                f"{label} {name}" for label, name in enumerate(CLASS_COLOUR_NAMES)
            )
            log_image(trainer, key, scatter_image(torch.cat(self.means), torch.cat(self.labels)), caption)
        self.means, self.labels = [], []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking:
            self.collect(pl_module, batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.flush(trainer, "latent_means_val")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.collect(pl_module, batch)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.flush(trainer, "latent_means_test")

"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for GANs trained on little data.

The same random colour, translation and cutout transforms are applied to every image the
discriminator sees, real and generated, in both players' steps; being differentiable, the
generator learns through them. Randomness comes from a passed generator (drawn on the CPU), so a
resumed run augments exactly as an uninterrupted one would.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

POLICIES = ("color", "translation", "cutout")


def check_policy(policy: str) -> list[str]:
    """The comma-separated policy as a list; a clear error for an unknown transform."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(f"Unknown DiffAugment transform(s) {unknown}. Available: {', '.join(POLICIES)}")
    return names


def diff_augment(images: Tensor, policy: str, generator: torch.Generator | None = None) -> Tensor:
    """Apply the transforms of `policy` ('color,translation,cutout'; '' for none) to images in [-1, 1]."""
    for name in check_policy(policy):
        images = TRANSFORMS[name](images, generator)
    return images


def _uniform(images: Tensor, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    return torch.rand(shape, generator=generator).to(device=images.device, dtype=images.dtype)


def random_color(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5), one draw each per image."""
    batch = len(images)
    images = images + (_uniform(images, (batch, 1, 1, 1), generator) - 0.5)
    mean = images.mean(dim=1, keepdim=True)
    images = (images - mean) * (_uniform(images, (batch, 1, 1, 1), generator) * 2) + mean
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * (_uniform(images, (batch, 1, 1, 1), generator) + 0.5) + mean


def random_translation(images: Tensor, generator: torch.Generator | None = None, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to `ratio` of its size in x and y (whole pixels), filling with zeros."""
    batch, _, height, width = images.shape
    max_y, max_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    shift_y = torch.randint(-max_y, max_y + 1, (batch, 1, 1), generator=generator).to(images.device)
    shift_x = torch.randint(-max_x, max_x + 1, (batch, 1, 1), generator=generator).to(images.device)
    rows = torch.arange(height, device=images.device)[None, :, None] - shift_y  # source row of each output row
    columns = torch.arange(width, device=images.device)[None, None, :] - shift_x
    # Pad by one pixel of zeros and clamp out-of-image sources onto it.
    padded = F.pad(images, [1, 1, 1, 1])
    rows, columns = (rows + 1).clamp(0, height + 1), (columns + 1).clamp(0, width + 1)
    batch_index = torch.arange(batch, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch_index, rows, columns].permute(0, 3, 1, 2)


def random_cutout(images: Tensor, generator: torch.Generator | None = None, ratio: float = 0.5) -> Tensor:
    """Zero one square of `ratio` times the image size per image, at a random centre."""
    batch, _, height, width = images.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    centre_y = torch.randint(0, height + (1 - size_y % 2), (batch, 1, 1), generator=generator).to(images.device)
    centre_x = torch.randint(0, width + (1 - size_x % 2), (batch, 1, 1), generator=generator).to(images.device)
    rows = torch.arange(height, device=images.device)[None, :, None]
    columns = torch.arange(width, device=images.device)[None, None, :]
    inside = (
        (rows >= centre_y - size_y // 2)
        & (rows < centre_y - size_y // 2 + size_y)
        & (columns >= centre_x - size_x // 2)
        & (columns < centre_x - size_x // 2 + size_x)
    )
    return images * (~inside)[:, None].to(images.dtype)


TRANSFORMS = {"color": random_color, "translation": random_translation, "cutout": random_cutout}

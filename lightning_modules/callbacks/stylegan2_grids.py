"""StyleGAN2's sample grids: the truncation trick, style mixing and interpolation in W (`make sample`).

Each takes a `StyleGAN2Generator` (the EMA one for a trained model) and returns a (C, H, W) grid in
[0, 1]. The per-pixel noise is drawn from the same seed for every image of a grid, so rows and
columns differ only in what the grid varies. Conditional generators draw class (seed index) mod classes.
"""

import torch
from torch import Tensor
from torchvision.utils import make_grid

from lightning_modules.networks.stylegan2 import StyleGAN2Generator

TRUNCATION_PSIS = (1.0, 0.7, 0.5, 0.0)


def seeded_w(network: StyleGAN2Generator, seeds: list[int], psi: float = 1.0) -> Tensor:
    """One w per seed (z from that seed), truncated by psi; labels seed mod classes when conditional."""
    z = torch.stack([torch.randn(network.latent_dim, generator=torch.Generator().manual_seed(s)) for s in seeds])
    parameter = next(network.parameters())
    labels = torch.tensor(seeds) % network.num_classes if network.num_classes is not None else None
    labels = labels.to(parameter.device) if labels is not None else None
    return network.mapping(z.to(parameter.device, parameter.dtype), labels, psi)


def synthesize(network: StyleGAN2Generator, ws: Tensor, noise_seed: int = 0) -> Tensor:
    """Images in [0, 1] from per-layer w (B, num_ws, w_dim), with per-pixel noise from `noise_seed`."""
    images = network.synthesis(ws, torch.Generator().manual_seed(noise_seed))
    return ((images.float() + 1) / 2).clamp(0, 1).cpu()


@torch.no_grad()
def truncation_grid(network: StyleGAN2Generator, seeds: list[int], psis: tuple[float, ...] = TRUNCATION_PSIS) -> Tensor:
    """One row per psi (1 first: untruncated; 0 last: the mean w), one column per seed."""
    rows = [synthesize(network, network.broadcast(seeded_w(network, seeds, psi))) for psi in psis]
    return make_grid(torch.cat(rows), nrow=len(seeds))


@torch.no_grad()
def style_mixing_grid(
    network: StyleGAN2Generator, row_seeds: list[int], column_seeds: list[int], cutoff: int | None = None
) -> Tensor:
    """Cell (i, j): layers before `cutoff` (coarse: pose, shape) from row seed i, the rest (fine) from column j.

    The first row shows the column seeds' own images, the first column the row seeds'; the corner is blank.
    `cutoff` defaults to half of the layers (4x4 to 8x8 styles at 32 px).
    """
    cutoff = network.num_ws // 2 if cutoff is None else cutoff
    if not 0 < cutoff < network.num_ws:
        raise ValueError(f"style-mixing cutoff must lie in [1, {network.num_ws - 1}], got {cutoff}")
    row_ws = network.broadcast(seeded_w(network, row_seeds))
    column_ws = network.broadcast(seeded_w(network, column_seeds))
    row_images, column_images = synthesize(network, row_ws), synthesize(network, column_ws)
    cells = [torch.zeros_like(column_images[:1]), column_images]
    for index in range(len(row_seeds)):
        mixed = torch.cat([row_ws[index : index + 1].expand_as(column_ws)[:, :cutoff], column_ws[:, cutoff:]], dim=1)
        cells += [row_images[index : index + 1], synthesize(network, mixed)]
    return make_grid(torch.cat(cells), nrow=len(column_seeds) + 1)


@torch.no_grad()
def interpolation_grid(network: StyleGAN2Generator, seed_pairs: list[tuple[int, int]], steps: int = 8) -> Tensor:
    """One row per seed pair: w = (1 - t) w_a + t w_b for t from 0 to 1 in `steps` steps (linear in W)."""
    if steps < 2:
        raise ValueError(f"interpolation needs at least 2 steps, got {steps}")
    t = torch.linspace(0, 1, steps)[:, None]
    rows = []
    for first, second in seed_pairs:
        ends = seeded_w(network, [first, second])
        ws = torch.lerp(ends[:1], ends[1:], t.to(ends.device, ends.dtype))
        rows.append(synthesize(network, network.broadcast(ws)))
    return make_grid(torch.cat(rows), nrow=steps)

"""Truncation, style-mixing and W-interpolation grids of a small generator."""

import pytest
import torch

from lightning_modules.callbacks.stylegan2_grids import (
    interpolation_grid,
    seeded_w,
    style_mixing_grid,
    synthesize,
    truncation_grid,
)
from lightning_modules.networks.stylegan2 import StyleGAN2Generator


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    generator = StyleGAN2Generator(8, 8, 2, channels=1, image_size=8, channel_base=64, channel_max=8)
    generator.mapping.w_mean.normal_()
    return generator.eval()


def cell(grid, row, column, size=8, padding=2):
    top, left = padding + row * (size + padding), padding + column * (size + padding)
    return grid[0, top : top + size, left : left + size]


def test_truncation_grid_ends_in_one_image_of_the_mean_w(network):
    grid = truncation_grid(network, seeds=[0, 1, 2])
    assert grid.shape == (3, 2 + 4 * 10, 2 + 3 * 10)  # rows psi = 1, 0.7, 0.5, 0
    assert torch.equal(cell(grid, 3, 0), cell(grid, 3, 2))  # psi 0: every seed gives the mean w
    assert not torch.equal(cell(grid, 0, 0), cell(grid, 0, 2))


def test_style_mixing_grid_takes_coarse_styles_from_rows_and_fine_from_columns(network):
    grid = style_mixing_grid(network, row_seeds=[0, 1], column_seeds=[2, 3, 4], cutoff=2)
    assert grid.shape == (3, 2 + 3 * 10, 2 + 4 * 10)
    ws_row, ws_column = (network.broadcast(seeded_w(network, [seed])) for seed in (1, 4))
    expected = synthesize(network, torch.cat([ws_row[:, :2], ws_column[:, 2:]], dim=1))[0, 0]
    torch.testing.assert_close(cell(grid, 2, 3), expected, atol=1 / 255, rtol=0)
    with pytest.raises(ValueError, match=r"cutoff must lie in \[1, 3\], got 4"):
        style_mixing_grid(network, [0], [1], cutoff=4)


def test_interpolation_rows_start_and_end_at_their_seeds(network):
    grid = interpolation_grid(network, [(0, 1)], steps=5)
    assert grid.shape == (3, 2 + 10, 2 + 5 * 10)
    ends = synthesize(network, network.broadcast(seeded_w(network, [0, 1])))
    torch.testing.assert_close(cell(grid, 0, 0), ends[0, 0], atol=1e-6, rtol=0)
    torch.testing.assert_close(cell(grid, 0, 4), ends[1, 0], atol=1e-6, rtol=0)

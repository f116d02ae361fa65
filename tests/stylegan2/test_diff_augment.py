"""DiffAugment: differentiable, seeded, each transform doing what it says."""

import pytest
import torch

from lightning_modules.training.diff_augment import diff_augment, random_cutout, random_translation


def test_augmentation_is_differentiable_and_reproducible_from_the_generator():
    images = torch.randn(4, 3, 16, 16, requires_grad=True)
    first = diff_augment(images, "color,translation,cutout", torch.Generator().manual_seed(1))
    second = diff_augment(images, "color,translation,cutout", torch.Generator().manual_seed(1))
    assert first.shape == images.shape and torch.equal(first, second)
    first.sum().backward()
    assert images.grad.abs().sum() > 0
    assert torch.equal(diff_augment(images, ""), images)


def test_translation_moves_whole_images_and_fills_with_zeros():
    images = torch.arange(1.0, 65.0).reshape(1, 1, 8, 8).repeat(20, 1, 1, 1)
    shifted = random_translation(images, torch.Generator().manual_seed(0))
    for image in shifted:
        kept = image[image != 0]
        assert len(kept) >= 7 * 7  # a shift of at most one pixel (1/8 of 8) each way
        assert set(kept.tolist()) <= set(range(1, 65))


def test_cutout_zeroes_a_square_of_half_the_size():
    images = torch.ones(50, 1, 8, 8)
    zeroed = (random_cutout(images, torch.Generator().manual_seed(0)) == 0).flatten(1).sum(dim=1)
    assert zeroed.max() == 16 and zeroed.min() >= 4  # a 4x4 square, clipped at the border


def test_unknown_transform_is_named():
    with pytest.raises(ValueError, match=r"Unknown DiffAugment transform\(s\) \['colour'\]. Available: color"):
        diff_augment(torch.zeros(1, 1, 4, 4), "colour")

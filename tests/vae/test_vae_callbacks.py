"""Reconstruction, interpolation and latent-scatter images from a tiny VAE."""

import functools

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.callbacks.reconstruction_grids import (
    CLASS_COLOURS,
    InterpolationGrid,
    LatentScatter,
    ReconstructionGrid,
    scatter_image,
)
from lightning_modules.networks.vae import MLPDecoder, MLPEncoder
from lightning_modules.objectives.likelihoods import BernoulliLikelihood
from lightning_modules.vae import VAE


def test_scatter_places_points_by_position_and_colours_them_by_class():
    points = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])
    image = scatter_image(points, torch.tensor([0, 1, 2]), size=11, dot=0)
    assert image.shape == (3, 11, 11)
    torch.testing.assert_close(image[:, 10, 0], CLASS_COLOURS[0])  # bottom left
    torch.testing.assert_close(image[:, 0, 10], CLASS_COLOURS[1])  # top right
    torch.testing.assert_close(image[:, 5, 5], CLASS_COLOURS[2])  # the origin, mid-image
    assert (image == 1).all(dim=0).sum() == 11 * 11 - 3  # everything else stays white
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        scatter_image(torch.zeros(4, 3), torch.zeros(4))


@pytest.mark.parametrize("num_classes", [None, 2])
def test_callbacks_write_images_for_every_logger(tmp_path, num_classes):
    encoder = MLPEncoder(latent_dim=2, image_size=8, hidden_dims=(8,), num_classes=num_classes)
    decoder = MLPDecoder(latent_dim=2, image_size=8, hidden_dims=(8,), num_classes=num_classes)
    vae = VAE(
        encoder,
        decoder,
        BernoulliLikelihood(),
        functools.partial(torch.optim.Adam),
        binarize=True,
        iwae_samples=2,
    )
    data = TensorDataset(torch.rand(16, 1, 8, 8), torch.arange(16) % 2)
    trainer = L.Trainer(
        max_steps=2,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        callbacks=[
            ReconstructionGrid(num_images=6, per_row=3),
            InterpolationGrid(num_pairs=2, steps=4),
            LatentScatter(),
        ],
    )
    trainer.fit(vae, DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    trainer.test(vae, DataLoader(data, batch_size=8))
    written = sorted(path.name.split("_step")[0] for path in (tmp_path / "images").glob("*.png"))
    assert written == ["interpolations", "latent_means_test", "latent_means_val", "reconstructions"]

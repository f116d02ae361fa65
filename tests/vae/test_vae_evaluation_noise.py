"""VAE evaluation scores depend on the images and the seed, not on how the evaluation was batched."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.autoencoder import Autoencoder
from lightning_modules.training.noise import PerImageNoise
from lightning_modules.vae import VAE
from tests.vae.test_vae_module import tiny_vae

IMAGES = torch.rand(500, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_scores(module, batch_size: int) -> dict[str, float]:
    loader = DataLoader(TensorDataset(IMAGES, torch.zeros(len(IMAGES), dtype=torch.long)), batch_size=batch_size)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.test(module, loader, verbose=False)
    return metrics


test_scores.__test__ = False  # a helper, not a test


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module_class", "settings"), [(VAE, {"iwae_samples": 4, "iwae_chunk_size": 3}), (Autoencoder, {})]
)
def test_test_scores_are_the_same_at_batch_sizes_100_and_250(module_class, settings):
    torch.manual_seed(0)
    module = tiny_vae(module_class=module_class, binarize=True, **settings)
    at_100, at_250 = test_scores(module, 100), test_scores(module, 250)
    assert at_100.keys() == at_250.keys()
    for name in at_100:
        assert at_100[name] == pytest.approx(at_250[name], rel=1e-6), name


def test_per_image_noise_follows_the_image_not_its_place_in_the_batch():
    batch = IMAGES[:6]
    noise = PerImageNoise(batch, seed=3).randn((2, 6, 5), batch_dim=1)
    reordered = PerImageNoise(batch.flip(0), seed=3).randn((2, 6, 5), batch_dim=1)
    alone = PerImageNoise(batch[2:3], seed=3).randn((2, 1, 5), batch_dim=1)
    torch.testing.assert_close(reordered, noise.flip(1), rtol=0, atol=0)
    torch.testing.assert_close(alone[:, 0], noise[:, 2], rtol=0, atol=0)
    assert not torch.equal(PerImageNoise(batch, seed=4).randn((2, 6, 5), batch_dim=1), noise)

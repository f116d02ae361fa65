import os
import time

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.functional.classification import binary_auroc
from torchmetrics.image.fid import FrechetInceptionDistance

from datamodules.torchvision_datamodule import TorchvisionDataModule
from lightning_modules.callbacks.generative_metrics import GenerativeMetrics
from lightning_modules.metrics.auroc import auroc_of_scores
from lightning_modules.metrics.feature_extractors import (
    InceptionUnavailableError,
    classifier_feature_extractor,
    inception_feature_extractor,
)
from tests.helpers.config import DATA_ROOT, requires_mnist


class Flatten(nn.Module):
    """Features = the images themselves, so FID can be checked against NumPy on known vectors."""

    num_features = 4

    def forward(self, images):
        return images.flatten(1).double()


def numpy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_fid_on_fixed_features_matches_numpy_and_grows_with_a_shift():
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(500, 1, 2, 2, generator=generator, dtype=torch.float64)
    fake = torch.rand(500, 1, 2, 2, generator=generator, dtype=torch.float64) * 0.8 + 0.1
    values = []
    for shift in (0.0, 0.5):
        fid = FrechetInceptionDistance(Flatten(), reset_real_features=False)
        fid.update(real, real=True)
        fid.update(fake + shift, real=False)
        values.append(fid.compute().item())
    expected = numpy_fid(real.flatten(1).numpy(), fake.flatten(1).numpy())
    assert values[0] == pytest.approx(expected, rel=1e-5)
    assert values[1] > values[0] + 0.9


def test_inception_without_weights_fails_at_once_naming_both_fixes(tmp_path):
    start = time.monotonic()
    with pytest.raises(InceptionUnavailableError, match="weights_path=.*metrics=classifier"):
        inception_feature_extractor(str(tmp_path / "missing.pth"))
    assert time.monotonic() - start < 5


def test_metrics_need_two_samples():
    with pytest.raises(ValueError, match="num_samples must be >= 2"):
        GenerativeMetrics(feature_extractor=None, num_samples=1)


@pytest.fixture(scope="session")
def mnist_features():
    datamodule = TorchvisionDataModule("mnist", str(DATA_ROOT), batch_size=256)
    return classifier_feature_extractor(
        datamodule, os.path.join(os.environ["GENLAB_CACHE_DIR"], "feature_classifiers")
    ), datamodule


@requires_mnist
def test_feature_classifier_is_accurate_and_fid_separates_real_from_noise(mnist_features):
    extractor, datamodule = mnist_features
    datamodule.setup()
    real = torch.stack([datamodule.test_set[i][0] for i in range(1000)])
    labels = torch.stack([datamodule.test_set[i][1] for i in range(1000)])
    with torch.no_grad():
        accuracy = (extractor.logits(real).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.95

    def fid(fake):
        metric = FrechetInceptionDistance(extractor.features)
        metric.update(real[:500], real=True)
        metric.update(fake, real=False)
        return metric.compute().item()

    assert fid(real[500:]) < 0.1 * fid(torch.rand(500, 1, 28, 28))


class NaNSampler(nn.Module):
    """A stand-in module whose every other sample is NaN."""

    device = torch.device("cpu")

    def sample(self, n, generator=None):
        images = torch.rand(n, 1, 2, 2, generator=generator)
        images[::2] = torch.nan
        return images


def test_nonfinite_samples_are_counted_not_crashing_fid(monkeypatch):
    from lightning_modules.metrics.feature_extractors import FeatureExtractor

    logged = {}
    module = NaNSampler()
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value))
    real = DataLoader(TensorDataset(torch.rand(20, 1, 2, 2, dtype=torch.float64)), batch_size=8)
    trainer = type("FakeTrainer", (), {"sanity_checking": False, "world_size": 1, "global_rank": 0})()
    trainer.val_dataloaders = real
    metrics = GenerativeMetrics(FeatureExtractor("flat", Flatten(), Flatten()), num_samples=20, batch_size=8)
    metrics.compute(trainer, module, "val")
    assert logged["val/nonfinite_samples"] == 10
    assert logged["val/fid"] == logged["val/fid"]  # finite, not NaN


def test_auroc_of_unbounded_scores_matches_a_hand_count():
    scores = torch.tensor([100.0, 200.0, 300.0, 400.0, 250.0])
    positives = torch.tensor([0, 1, 0, 1, 0])
    # Positive-negative pairs ordered right: 200 > 100; 400 > 100, 300, 250; wrong: 200 < 300, 250.
    assert auroc_of_scores(scores, positives).item() == pytest.approx(4 / 6)
    assert auroc_of_scores(-scores, positives).item() == pytest.approx(2 / 6)
    # The trap it avoids: raw nats read as logits all saturate to one.
    assert binary_auroc(scores, positives).item() == 0.5

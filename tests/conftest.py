"""Shared fixtures: composed configs pointed at tmp_path, a session-wide cache, and the MNIST judge of
the learning tests (helpers: tests/helpers/)."""

import os
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig
from torch import Tensor

from datamodules.torchvision_datamodule import TorchvisionDataModule
from lightning_modules.metrics.feature_extractors import FeatureExtractor, classifier_feature_extractor
from tests.helpers.config import DATA_ROOT, compose_config


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache (feature classifiers) for the whole session, never the user's."""
    cache = tmp_path_factory.mktemp("genlab-cache")
    os.environ["GENLAB_CACHE_DIR"] = str(cache)
    return cache


@pytest.fixture
def make_config(tmp_path: Path):
    def make(*overrides: str) -> DictConfig:
        return compose_config(tmp_path, list(overrides))

    return make


@pytest.fixture(scope="session")
def mnist_judge(session_cache: Path) -> tuple[FeatureExtractor, Tensor]:
    """What the learning tests score samples with: the cached MNIST feature classifier and the first
    1000 real test images."""
    datamodule = TorchvisionDataModule("mnist", str(DATA_ROOT), batch_size=256)
    extractor = classifier_feature_extractor(datamodule, str(session_cache / "feature_classifiers"))
    datamodule.setup()
    return extractor, torch.stack([datamodule.test_set[i][0] for i in range(1000)])

"""Shared fixtures: composed configs pointed at tmp_path, a session-wide cache, the MNIST judge of
the learning tests, and the training runs tests declare to run in the background (helpers: tests/helpers/)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig
from torch import Tensor

from datamodules.torchvision_datamodule import TorchvisionDataModule
from lightning_modules.metrics.feature_extractors import FeatureExtractor, classifier_feature_extractor
from tests.helpers.background import BackgroundTraining
from tests.helpers.config import DATA_ROOT, compose_config


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache (feature classifiers) for the whole session, never the user's."""
    cache = tmp_path_factory.mktemp("genlab-cache")
    os.environ["GENLAB_CACHE_DIR"] = str(cache)
    return cache


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that wait for a background run go last, so the other tests fill the time it trains."""
    items.sort(key=lambda item: item.get_closest_marker("background_training") is not None)


@pytest.fixture(scope="session", autouse=True)
def background_runs(
    request: pytest.FixtureRequest, session_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, BackgroundTraining]]:
    """The runs of the selected, not skipped tests marked `background_training`, started now; node id -> run.
    They start after `session_cache`, so they inherit its GENLAB_CACHE_DIR."""
    runs = {}
    for item in request.session.items:
        marker = item.get_closest_marker("background_training")
        skipped = any(mark.args and mark.args[0] is True for mark in item.iter_markers("skipif"))
        if marker is not None and not skipped:
            runs[item.nodeid] = BackgroundTraining(list(marker.args), tmp_path_factory.mktemp("background"))
    yield runs
    for run in runs.values():
        run.stop()


@pytest.fixture(autouse=True)
def one_thread_beside_background_runs(
    background_runs: dict[str, BackgroundTraining], monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """While a background run trains, each test computes on one thread (and so do its subprocesses).
    Two threads sharing a core with the run wait for each other at every parallel step: the suite
    took 28 minutes that way, against 19 without the run."""
    if not any(run.training() for run in background_runs.values()):
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def background_run(
    request: pytest.FixtureRequest, background_runs: dict[str, BackgroundTraining]
) -> BackgroundTraining:
    """This test's background training run (declared with `@pytest.mark.background_training(*overrides)`)."""
    return background_runs[request.node.nodeid]


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

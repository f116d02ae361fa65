"""Shared fixtures: composed configs pointed at tmp_path and a session-wide cache (helpers: tests/helpers/)."""

import os
from pathlib import Path

import pytest
from omegaconf import DictConfig

from tests.helpers.config import compose_config


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

"""Shared fixtures: composed configs pointed at tmp_path, the real data root, a session-wide cache."""

import os
from pathlib import Path

import pytest
from omegaconf import DictConfig

from lightning_modules import run

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# Tests and CI run with DATA_ROOT=../shared/datasets; nothing is ever downloaded.
DATA_ROOT = Path(os.environ.setdefault("DATA_ROOT", str(ROOT.parent / "shared" / "datasets"))).resolve()
os.environ["DATA_ROOT"] = str(DATA_ROOT)
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def has_mnist() -> bool:
    return (DATA_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


requires_mnist = pytest.mark.skipif(not has_mnist(), reason=f"MNIST not found under DATA_ROOT={DATA_ROOT}")


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache (feature classifiers) for the whole session, never the user's."""
    cache = tmp_path_factory.mktemp("genlab-cache")
    os.environ["GENLAB_CACHE_DIR"] = str(cache)
    return cache


def compose_config(output_dir: Path, overrides: list[str] | None = None) -> DictConfig:
    """The config `python train.py <overrides>` would run, writing under `output_dir`, logging to CSV, quiet."""
    quiet = ["logger=csv", "callbacks.progress_bar=null", "trainer.enable_model_summary=false"]
    return run.compose_config(quiet + list(overrides or []), output_dir)


@pytest.fixture
def make_config(tmp_path: Path):
    def make(*overrides: str) -> DictConfig:
        return compose_config(tmp_path, list(overrides))

    return make

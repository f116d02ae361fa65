"""Paths, the data root and composed configs for tests: the config `python train.py` would run."""

import os
from pathlib import Path

import pytest
from omegaconf import DictConfig

from genlab import run

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
# Tests and CI run with DATA_ROOT=../shared/datasets; nothing is ever downloaded.
DATA_ROOT = Path(os.environ.setdefault("DATA_ROOT", str(ROOT.parent / "shared" / "datasets"))).resolve()
os.environ["DATA_ROOT"] = str(DATA_ROOT)
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def has_mnist() -> bool:
    return (DATA_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


requires_mnist = pytest.mark.skipif(not has_mnist(), reason=f"MNIST not found under DATA_ROOT={DATA_ROOT}")


def compose_config(output_dir: Path, overrides: list[str] | None = None) -> DictConfig:
    """The config `python train.py <overrides>` would run, writing under `output_dir`, logging to CSV, quiet."""
    quiet = ["logger=csv", "callbacks.progress_bar=null", "trainer.enable_model_summary=false"]
    return run.compose_config(quiet + list(overrides or []), output_dir)

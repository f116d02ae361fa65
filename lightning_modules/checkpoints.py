"""Checkpoints that carry their run's resolved config, and rebuilding a module from one."""

import pickle
import zipfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

CONFIG_KEY = "genlab_config"
LOGGER_VERSIONS_KEY = "genlab_logger_versions"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be evaluated; the message names the file and what is wrong with it."""


class ConfigInCheckpoint(Callback):
    """Stores the run's resolved config (and its loggers' run ids) in every checkpoint.

    Evaluation rebuilds the model from it without re-typing training flags, and can log to the same
    W&B run.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.settings = OmegaConf.to_container(cfg, resolve=True)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.settings
        checkpoint[LOGGER_VERSIONS_KEY] = {type(logger).__name__: str(logger.version) for logger in trainer.loggers}


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents, or a `CheckpointError` saying why they cannot be had."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        raise CheckpointError(
            f"{path} cannot be read as a PyTorch checkpoint ({type(error).__name__}: {error}). It may be "
            "truncated (a run killed while saving) or not a checkpoint at all."
        ) from error
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint:
        raise CheckpointError(
            f"{path} was not written by genlab's train.py: it holds no '{CONFIG_KEY}', so the model it "
            "belongs to is unknown."
        )
    return checkpoint


def module_from_checkpoint(
    path: str | Path, overrides: DictConfig | dict | None = None
) -> tuple[L.LightningModule, DictConfig]:
    """Rebuild a module from a checkpoint's own config (plus `overrides`) and load its weights."""
    return build_module(read_checkpoint(path), path, overrides)


def build_module(
    checkpoint: dict[str, Any], path: str | Path, overrides: DictConfig | dict | None = None
) -> tuple[L.LightningModule, DictConfig]:
    """`module_from_checkpoint` for checkpoint contents already read from `path` (named in errors)."""
    cfg = OmegaConf.merge(OmegaConf.create(checkpoint[CONFIG_KEY]), overrides or {})
    target = cfg.model.get("_target_")
    try:
        module = instantiate(cfg.model)
    except InstantiationException as error:
        raise CheckpointError(
            f"{path}: its config names the model '{target}', which cannot be built with this version of "
            f"genlab ({error}). Evaluate it with the genlab commit that trained it."
        ) from error
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, KeyError) as error:
        raise CheckpointError(
            f"{path}: its weights do not fit the model '{target}' its config builds now ({error})."
        ) from error
    return module.eval(), cfg

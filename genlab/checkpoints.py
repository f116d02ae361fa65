"""Checkpoints that carry their run's resolved config, and rebuilding a module from one.

A checkpoint is a file anyone can hand over, so reading one never runs code: it is unpickled with
`weights_only=True` (tensors and plain values only), and its stored config may name only genlab's
own classes, torch optimizers and modules, and Lightning's trainer pieces before anything in it
is built. Lightning reads and writes checkpoints through `AtomicCheckpointIO`, which applies the
same rule on resume and writes each file whole or not at all.
"""

import importlib
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genlab.atomic_files import torch_save_atomically
from genlab.legacy_paths import with_current_paths

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
    checkpoint = load_weights_only(path)
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint:
        raise CheckpointError(
            f"{path} was not written by genlab's train.py: it holds no '{CONFIG_KEY}', so the model it "
            "belongs to is unknown."
        )
    # Checkpoints written before the layered layout name the flat module paths of that time.
    checkpoint[CONFIG_KEY] = with_current_paths(checkpoint[CONFIG_KEY])
    return checkpoint


UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def load_weights_only(path: Path, map_location: Any = "cpu") -> Any:
    """`torch.load` of tensors and plain values only: a crafted file cannot run code while it is read."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = UNSAFE_GLOBAL.search(str(error))
        if unsafe is None:
            raise CheckpointError(unreadable(path)) from None
        # torch's own message advises turning the safe reader off, which would run the file's code: not repeated.
        raise CheckpointError(
            f"{path} holds the Python object '{unsafe.group(1)}', which genlab refuses to unpickle because "
            "unpickling can run code; genlab's checkpoints hold only tensors and plain values. Use a "
            "checkpoint written by genlab's train.py."
        ) from None
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile, ValueError) as error:
        raise CheckpointError(unreadable(path, error)) from error


def unreadable(path: Path, error: Exception | None = None) -> str:
    detail = f" ({type(error).__name__}: {error})" if error is not None and "weights_only" not in str(error) else ""
    return (
        f"{path} cannot be read as a PyTorch checkpoint{detail}. It may be truncated (a run killed while "
        "saving) or not a checkpoint at all."
    )


# --- what a stored config may build ---

# The sections genlab instantiates from a stored config (the model, its data, and the loggers of
# `log_to_run`); callbacks and trainer settings are only read, never built, from a file.
BUILT_SECTIONS = ("model", "data", "logger")

GENLAB_PACKAGES = ("lightning_modules.", "datamodules.", "genlab.")
LIGHTNING_PACKAGES = (
    "lightning.pytorch.callbacks.",
    "lightning.pytorch.loggers.",
    "lightning.pytorch.strategies.",
    "lightning.pytorch.plugins.",
)
TORCH_CLASSES: dict[str, type] = {
    "torch.optim": torch.optim.Optimizer,
    "torch.optim.lr_scheduler": torch.optim.lr_scheduler.LRScheduler,
    "torch.nn": torch.nn.Module,
}


def is_trusted_target(target: Any) -> bool:
    """A `_target_` genlab builds from a file: its own packages, Lightning's trainer pieces, torch
    optimizers, schedulers and modules; never a function such as `builtins.open` or `os.system`."""
    if not isinstance(target, str):
        return False
    if target.startswith(GENLAB_PACKAGES + LIGHTNING_PACKAGES) or target == "lightning.pytorch.Trainer":
        return True
    module_name, _, name = target.rpartition(".")
    if module_name not in TORCH_CLASSES:
        return False
    found = getattr(importlib.import_module(module_name), name, None)
    return isinstance(found, type) and issubclass(found, TORCH_CLASSES[module_name])


def check_stored_values(node: Any, path: Path, key: str = "") -> None:
    """Refuse a stored config that names an untrusted `_target_` or holds an interpolation, naming it."""
    if isinstance(node, dict):
        for name, value in node.items():
            child = f"{key}.{name}" if key else str(name)
            if name == "_target_" and not is_trusted_target(value):
                raise CheckpointError(
                    f"{path}: its config asks to build '{value}' ({child}), which genlab refuses to build from a "
                    "file; only genlab's own classes (lightning_modules., datamodules., genlab.), torch optimizers, "
                    "schedulers and modules, and Lightning's trainer pieces are built."
                )
            check_stored_values(value, path, child)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            check_stored_values(value, path, f"{key}[{index}]")
    elif isinstance(node, str) and "${" in node:
        # genlab stores configs resolved; an interpolation could call any registered resolver.
        raise CheckpointError(
            f"{path}: its config holds the interpolation {node!r} ({key}), which genlab never stores."
        )


def stored_config(checkpoint: dict[str, Any], path: str | Path) -> DictConfig:
    """The checkpoint's own config, checked so that building its model and data cannot run foreign code."""
    settings = checkpoint.get(CONFIG_KEY)
    sections = settings if isinstance(settings, dict) else {}
    for section in ("model", "data"):
        if not isinstance(sections.get(section), dict) or not isinstance(sections[section].get("_target_"), str):
            raise CheckpointError(
                f"{path}: its stored config ('{CONFIG_KEY}') is malformed: it needs a '{section}' section with a "
                "'_target_'. Use the checkpoint as train.py wrote it."
            )
    for section in BUILT_SECTIONS:
        check_stored_values(settings.get(section), Path(path), section)
    try:
        return OmegaConf.create(settings)
    except OmegaConfBaseException as error:
        first_line = str(error).splitlines()[0]
        raise CheckpointError(f"{path}: its stored config ('{CONFIG_KEY}') is malformed ({first_line}).") from error


def module_from_checkpoint(
    path: str | Path, overrides: DictConfig | dict | None = None
) -> tuple[L.LightningModule, DictConfig]:
    """Rebuild a module from a checkpoint's own config (plus `overrides`) and load its weights."""
    return build_module(read_checkpoint(path), path, overrides)


def build_module(
    checkpoint: dict[str, Any], path: str | Path, overrides: DictConfig | dict | None = None
) -> tuple[L.LightningModule, DictConfig]:
    """`module_from_checkpoint` for checkpoint contents already read from `path` (named in errors)."""
    try:
        cfg = OmegaConf.merge(stored_config(checkpoint, path), overrides or {})
    except OmegaConfBaseException as error:
        raise CheckpointError(f"{path}: checkpoint_overrides do not fit its config ({error}).") from error
    target = cfg.model.get("_target_")
    try:
        module = instantiate(cfg.model)
    except (InstantiationException, OmegaConfBaseException) as error:
        raise CheckpointError(
            f"{path}: its config names the model '{target}', which cannot be built with this version of "
            f"genlab ({error}). Evaluate it with the genlab commit that trained it."
        ) from error
    load_weights(module, checkpoint, path)
    return module.eval(), cfg


def load_weights(module: L.LightningModule, checkpoint: dict[str, Any], path: str | Path) -> None:
    """The checkpoint's weights into `module`, or a `CheckpointError` saying they belong to another model."""
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: its weights do not fit the model '{type(module).__name__}' its config builds now ({first_line})."
        ) from error


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reader and writer (`trainer.plugins` in conf/trainer/default.yaml), made safe.

    Lightning's own writer stages the file in `$TMPDIR` and moves it; across filesystems that move is
    a copy over the old file, so a kill or a full disk destroyed the last good checkpoint. Here the
    temporary sits beside the file and is renamed over it. Reading (resume, testing the best
    checkpoint) is always `weights_only`, whatever the caller asks.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's fsspec writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch_save_atomically(checkpoint, path)

    def load_checkpoint(
        self, path: str | Path, map_location: Callable | None = lambda storage, loc: storage, weights_only: Any = None
    ) -> dict[str, Any]:
        if "://" in str(path):
            return super().load_checkpoint(path, map_location, weights_only=True)
        return load_weights_only(Path(path), map_location)


# --- command lines ---

HYDRA_SPECIAL = re.compile(r"[\s=,\[\]{}()'\"]")


def quote_checkpoint_paths(arguments: list[str]) -> list[str]:
    """Command-line overrides with every `ckpt_path=` value quoted for Hydra when it needs it.

    Lightning names checkpoints `epoch=0-step=20.ckpt`, and folders may hold spaces; Hydra's
    override grammar rejects both unquoted, so they are quoted here rather than refused.
    """
    quoted = []
    for argument in arguments:
        key, equals, value = argument.partition("=")
        if equals and key.lstrip("+") == "ckpt_path" and value[:1] not in ("'", '"') and HYDRA_SPECIAL.search(value):
            argument = f"{key}='" + value.replace("'", "\\'") + "'"
        quoted.append(argument)
    return quoted

"""One training run from a composed config: instantiate, fit, test, close the loggers."""

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from genlab.atomic_files import remove_stale_temporaries
from genlab.checkpoints import (
    CheckpointError,
    ConfigInCheckpoint,
    load_weights,
    read_checkpoint,
    stored_config,
)
from genlab.compare import is_path_setting
from genlab.config_tree import print_config_tree
from genlab.known_warnings import silence_known_warnings
from genlab.loggers import finish_loggers, git_commit
from genlab.resume import resumed
from genlab.settings import check_settings
from genlab.trainer_settings import manual_optimization_settings
from lightning_modules.callbacks.interruption import InterruptionCheckpoint

log = logging.getLogger(__name__)


CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_config(overrides: list[str], output_dir: str | Path) -> DictConfig:
    """The config `python train.py <overrides>` would run, writing under `output_dir`.

    For notebooks and scripts, which run outside Hydra's app (so no `hydra:` output folder).
    """
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[f"paths.output_dir={output_dir}", *overrides])


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a config group dict; `null` entries are switched off."""
    if group is None:
        return []
    return [instantiate(entry) for entry in group.values() if entry is not None]


def without_path_settings(resolved: Any, raw: Any) -> Any:
    """`resolved` less every setting whose unresolved value (in `raw`) is built from `${paths.*}`."""
    if not isinstance(raw, dict):
        return resolved
    kept = (key for key, value in raw.items() if not is_path_setting(value))
    return {key: without_path_settings(resolved[key], raw[key]) for key in kept}


def loggable_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config, nested as composed, with its git commit.

    Settings derived from `paths` (checkpoint folder, logger folders, data root) are left out: the
    `paths` group holds those absolute paths once, so they fill no columns elsewhere.
    """
    raw = OmegaConf.to_container(cfg, resolve=False)
    settings = without_path_settings(OmegaConf.to_container(cfg, resolve=True), raw)
    return {**settings, "git_commit": git_commit()}


def log_run_config(loggers: list[Logger], cfg: DictConfig) -> None:
    """The config once per run: the modules' own hyperparameters are not logged beside it."""
    settings = loggable_config(cfg)
    for logger in loggers:
        logger.log_hyperparams(settings)


def best_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
        return callback.best_model_path
    return None


def float_metrics(trainer: L.Trainer) -> dict[str, float]:
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def command_line_overrides(cfg: DictConfig) -> list[str]:
    """The overrides this run was started with (what a resume command repeats); outside Hydra's app
    (tests, notebooks) only the experiment."""
    if HydraConfig.initialized():
        return list(HydraConfig.get().overrides.task)
    return [f"experiment={cfg.task_name}"]


def check_resumable(path: str, cfg: DictConfig, module: L.LightningModule) -> None:
    """Refuse in one line a `ckpt_path=` this run cannot resume from, before Lightning unpickles it."""
    checkpoint = read_checkpoint(path)
    stored = stored_config(checkpoint, path)
    if stored.model._target_ != cfg.model._target_:
        raise CheckpointError(
            f"{path} holds a '{stored.model._target_}' (experiment '{stored.get('task_name')}'), but this run builds "
            f"'{cfg.model._target_}'; resume it with experiment={stored.get('task_name')}."
        )
    load_weights(module, checkpoint, path)


def remove_checkpoint_temporaries(trainer: L.Trainer) -> None:
    """A run killed while saving leaves a `.partial` beside its checkpoints; never a broken checkpoint."""
    if trainer.is_global_zero:
        for callback in trainer.checkpoint_callbacks:
            if getattr(callback, "dirpath", None):
                remove_stale_temporaries(callback.dirpath)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit (and test) the configured model; returns the final metrics.

    SIGTERM or Ctrl-C saves the step in progress and raises `RunInterruptedError`, whose message
    says how to resume.
    """
    cfg = resumed(cfg)
    check_settings(cfg)
    silence_known_warnings()
    if cfg.get("print_config"):
        rank_zero_only(print_config_tree)(cfg, Path(cfg.paths.output_dir) / "config_tree.log")
    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.matmul_precision)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()  # a missing dataset fails here, in seconds, before anything else is built
    module = instantiate(cfg.model)
    if cfg.get("ckpt_path"):
        check_resumable(cfg.ckpt_path, cfg, module)
    interruption = InterruptionCheckpoint(Path(cfg.paths.output_dir) / "checkpoints")
    callbacks: list[Callback] = [*instantiate_all(cfg.callbacks), ConfigInCheckpoint(cfg), interruption]
    # metrics=none leaves an empty group, or only the keys a debug preset sets (debug=fdr adds
    # metrics.num_samples): no `_target_`, no metrics callback.
    if cfg.get("metrics") and "_target_" in cfg.metrics:
        callbacks.append(instantiate(cfg.metrics))
    trainer_cfg, budget_callbacks = manual_optimization_settings(cfg.trainer, module)
    loggers: list[Logger] = instantiate_all(cfg.logger)
    trainer = instantiate(trainer_cfg, callbacks=[*callbacks, *budget_callbacks], logger=loggers)
    remove_checkpoint_temporaries(trainer)
    try:
        log_run_config(loggers, cfg)
        # weights_only: a checkpoint never runs code, whichever checkpoint reader the trainer has
        trainer.fit(module, datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        metrics = float_metrics(trainer)
        if cfg.test:
            trainer.test(module, datamodule, ckpt_path=best_checkpoint(trainer), weights_only=True)
            metrics |= float_metrics(trainer)
    except BaseException as error:
        finish_loggers(loggers, exit_code=1)  # W&B shows the run as failed, so sweeps and dashboards see it
        interrupted = interruption.error(command_line_overrides(cfg))
        if interrupted is not None:
            raise interrupted from error
        raise
    finish_loggers(loggers)
    return metrics

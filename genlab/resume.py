"""Resume a run by its folder: `make train MODEL=dcgan RESUME=outputs/dcgan/<run>`.

The folder's `checkpoints/last.ckpt` holds the weights, optimiser and loop state, and the id of the
run's W&B run (see `checkpoints.ConfigInCheckpoint`), so the same W&B run goes on; nobody copies an id
out of a folder name.
"""

import inspect
from pathlib import Path

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf, open_dict

from foundation.errors import UserError
from genlab.checkpoints import CONFIG_KEY, LOGGER_VERSIONS_KEY, read_checkpoint
from genlab.compare import flatten, is_path_setting

# Sections that must match the checkpoint: a different model or data config would load the weights
# into a run that silently trains something else.
MATCHING_SECTIONS = ("model", "data")


class ResumeError(UserError, ValueError):
    """A `resume=` folder that cannot be continued; the message says why and what to do."""


def last_checkpoint(folder: Path) -> Path:
    checkpoint = folder / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise ResumeError(
            f"resume={folder}: no checkpoints/last.ckpt there to continue from. Name a run folder of "
            "`make train` (outputs/<model>/<run>) that saved one."
        )
    return checkpoint


def differing_settings(stored: dict, cfg: DictConfig) -> list[str]:
    """`model.*` and `data.*` keys whose value in the checkpoint's config differs from `cfg`'s.

    Settings built from `paths` (the data root) may move between machines and are not compared.
    """
    raw = flatten(OmegaConf.to_container(cfg, resolve=False))
    now = flatten(OmegaConf.to_container(cfg, resolve=True))
    before = flatten(stored)
    sections = tuple(f"{section}." for section in MATCHING_SECTIONS)
    keys = sorted(key for key in now.keys() | before.keys() if key.startswith(sections))
    missing = object()
    return [
        key
        for key in keys
        if not is_path_setting(raw.get(key))
        and before.get(key, missing) != now.get(key, missing)
        and not (key not in before and is_later_default(key, now))
    ]


def is_later_default(key: str, now: dict) -> bool:
    """True when `key` (say `data.pad`) is an argument added to its `_target_` after the checkpoint
    was written and `now` gives it the argument's default: the old run behaved that way too."""
    section, _, name = key.rpartition(".")
    target = now.get(f"{section}._target_")
    if not isinstance(target, str) or "." in name:
        return False
    try:
        parameter = inspect.signature(get_object(target)).parameters.get(name)
    except (ImportError, ValueError, TypeError):
        return False
    return parameter is not None and parameter.default is not inspect.Parameter.empty and parameter.default == now[key]


def resumed(cfg: DictConfig) -> DictConfig:
    """`cfg` with `resume=<folder>` turned into `ckpt_path` and the W&B run id; unchanged without it."""
    if not cfg.get("resume"):
        return cfg
    folder = Path(cfg.resume)
    if cfg.get("ckpt_path"):
        raise ResumeError(f"resume={folder} and ckpt_path={cfg.ckpt_path} both say where to start: keep one")
    checkpoint_path = last_checkpoint(folder)
    checkpoint = read_checkpoint(checkpoint_path)
    differing = differing_settings(checkpoint[CONFIG_KEY], cfg)
    if differing:
        raise ResumeError(
            f"resume={folder}: this command's config differs from the run's in {', '.join(differing)}. "
            f"Repeat the run's own overrides (listed in {folder / '.hydra' / 'overrides.yaml'})."
        )
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.ckpt_path = str(checkpoint_path)
        wandb_id = checkpoint.get(LOGGER_VERSIONS_KEY, {}).get("WandbLogger")
        if wandb_id and cfg.get("logger") and cfg.logger.get("wandb"):
            cfg.logger.wandb.id = wandb_id
            cfg.logger.wandb.resume = "allow"  # "must" would refuse a run that was offline and never synced
    return cfg

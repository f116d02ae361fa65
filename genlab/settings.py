"""Start-up checks of settings a user types: one line naming the key and the fix, before anything is built."""

import logging

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# What the FID/IS callback (`metrics=`) logs; nothing else does.
SAMPLE_METRICS = ("val/fid", "val/inception_score", "val/nonfinite_samples")
# (key, smallest allowed value, an example): whole numbers a typo easily breaks.
WHOLE_NUMBERS = (
    ("trainer.max_epochs", -1, "trainer.max_epochs=10"),
    ("trainer.max_steps", -1, "trainer.max_steps=5000"),
    ("data.batch_size", 1, "data.batch_size=64"),
    ("data.num_workers", 0, "data.num_workers=2"),
)


class SettingError(ValueError):
    """A setting that cannot work; the message names the key and how to fix it."""


def check_settings(cfg: DictConfig) -> None:
    """Refuse settings that cannot work, and point checkpoints at a loss when FID/IS are off."""
    for key, smallest, example in WHOLE_NUMBERS:
        check_whole_number(cfg, key, smallest, example)
    monitor_without_sample_metrics(cfg)


def check_whole_number(cfg: DictConfig, key: str, smallest: int, example: str) -> None:
    value = OmegaConf.select(cfg, key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingError(f"{key}={value} is not a whole number; set e.g. {example}")
    if value < smallest:
        raise SettingError(f"{key}={value} must be at least {smallest}; set e.g. {example}")


def monitor_without_sample_metrics(cfg: DictConfig) -> None:
    """With `metrics=none` nothing logs val/fid: checkpoints follow the family's loss-based metric instead.

    Families name theirs in `monitor_without_sample_metrics` ((metric, mode)); one without it is
    refused here rather than after a whole epoch, when the checkpoint callback finds no metric.
    """
    checkpoint = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    monitor = checkpoint.get("monitor")
    metrics_on = bool(cfg.get("metrics")) and "_target_" in cfg.metrics
    if metrics_on or monitor not in SAMPLE_METRICS:
        return
    fallback = getattr(get_class(cfg.model._target_), "monitor_without_sample_metrics", None)
    if fallback is None:
        raise SettingError(
            f"callbacks.model_checkpoint.monitor={monitor} needs FID/IS, which metrics=none switches off; "
            "use metrics=classifier, or callbacks.model_checkpoint.monitor=null to keep only the last checkpoint"
        )
    checkpoint.monitor, checkpoint.mode = fallback
    log.info("metrics=none: checkpoints follow %s (%s) instead of %s", *fallback, monitor)

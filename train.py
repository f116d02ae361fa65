"""Train any genlab model: `python train.py experiment=dcgan [hydra overrides]` (or `make train MODEL=dcgan`)."""

import logging
import math
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from datamodules.errors import BadImageError, DatasetNotFoundError
from lightning_modules.atomic_files import DiskFullError
from lightning_modules.checkpoints import CheckpointError, quote_checkpoint_paths
from lightning_modules.guards import NonFiniteLossError
from lightning_modules.metrics import InceptionUnavailableError
from lightning_modules.run import train
from lightning_modules.run_folders import remove_if_unused

log = logging.getLogger(__name__)
# Errors whose message says all a user needs: print it, not a traceback.
USER_ERRORS = (
    DatasetNotFoundError,
    BadImageError,
    NonFiniteLossError,
    InceptionUnavailableError,
    CheckpointError,
    DiskFullError,
)


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def optimized_value(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The metric a sweeper optimises; a missing or non-finite one fails the trial, naming it."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics:
        raise KeyError(f"optimized_metric '{name}' was not logged by this run. Logged: {', '.join(sorted(metrics))}")
    if not math.isfinite(metrics[name]):
        raise ValueError(f"optimized_metric '{name}' is {metrics[name]}")
    return metrics[name]


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        return optimized_value(cfg, train(cfg))
    except Exception as error:
        if in_multirun():
            # Raise to the sweeper, which records this trial as failed and goes on with the next;
            # the traceback stays in this trial's own train.log.
            log.exception("This trial failed")
            raise
        if isinstance(error, USER_ERRORS):
            print(f"error: {error}", file=sys.stderr)
            remove_if_unused(cfg.paths.output_dir)  # a start-up failure leaves no run without results behind
            sys.exit(1)
        raise


if __name__ == "__main__":
    sys.argv = quote_checkpoint_paths(sys.argv)
    main()

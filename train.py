"""Train any genlab model: `python train.py experiment=dcgan [hydra overrides]` (or `make train MODEL=dcgan`)."""

import logging
import math
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from datamodules.errors import BadImageError, DatasetNotFoundError
from genlab.atomic_files import DiskFullError
from genlab.checkpoints import CheckpointError, quote_checkpoint_paths
from genlab.resume import ResumeError
from genlab.run import train
from genlab.run_folders import remove_if_unused
from genlab.settings import SettingError
from genlab.trainer_settings import TrainerSettingError
from lightning_modules.callbacks.interruption import RunInterruptedError
from lightning_modules.metrics.feature_extractors import InceptionUnavailableError
from lightning_modules.training.guards import NonFiniteLossError

log = logging.getLogger(__name__)
# Writes to the run's train.log only (conf/hydra/default.yaml): why a run stopped stays beside its outputs.
run_log = logging.getLogger("run_log")
# Errors whose message says all a user needs: print it, not a traceback.
USER_ERRORS = (
    DatasetNotFoundError,
    BadImageError,
    NonFiniteLossError,
    InceptionUnavailableError,
    CheckpointError,
    DiskFullError,
    ResumeError,
    SettingError,
    TrainerSettingError,
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
    say_where_relative_paths_go(cfg)
    try:
        check_experiment_chosen()
        return optimized_value(cfg, train(cfg))
    except KeyboardInterrupt:  # Ctrl-C before training started: nothing to save
        run_log.error("Stopped by Ctrl-C before training started")
        print("\nStopped by Ctrl-C before training started; nothing to save.", file=sys.stderr)
        sys.exit(130)
    except Exception as error:
        if in_multirun():
            # Raise to the sweeper, which records this trial as failed and goes on with the next;
            # the traceback stays in this trial's own train.log.
            log.exception("This trial failed")
            raise
        if isinstance(error, RunInterruptedError):
            run_log.error("%s", error)
            print(error, file=sys.stderr)
            sys.exit(error.exit_code)
        run_log.error("Run failed: %s", error, exc_info=error)
        if isinstance(error, USER_ERRORS):
            print(f"error: {error}", file=sys.stderr)
            if isinstance(error, CheckpointError):  # a bad ckpt_path= leaves no run without results behind
                remove_if_unused(cfg.paths.output_dir)
            sys.exit(1)
        raise


def say_where_relative_paths_go(cfg: DictConfig) -> None:
    """Started outside the repository, relative data, output and cache folders land in the current
    directory: say so once, so nothing appears there unannounced."""
    if Path.cwd().resolve() == Path(__file__).resolve().parent:
        return
    keys = {"data (DATA_ROOT)": "data_dir", "outputs (paths.log_dir)": "log_dir", "caches": "cache_dir"}
    relative = [
        f"{name} in {Path(cfg.paths[key]).resolve()}"
        for name, key in keys.items()
        if not Path(cfg.paths[key]).is_absolute()
    ]
    if relative:
        log.warning("Running outside %s: %s", Path(__file__).resolve().parent, ", ".join(relative))


def check_experiment_chosen() -> None:
    if HydraConfig.initialized() and HydraConfig.get().runtime.choices.get("experiment") in (None, "null"):
        available = ", ".join(
            sorted(path.stem for path in (Path(__file__).parent / "conf" / "experiment").glob("*.yaml"))
        )
        raise SettingError(
            f"say which model to train: python train.py experiment=<name> (make train MODEL=<name>). "
            f"Available: {available}"
        )


if __name__ == "__main__":
    sys.argv = quote_checkpoint_paths(sys.argv)
    main()

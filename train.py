"""Train any genlab model: `python train.py experiment=dcgan [hydra overrides]` (or `make train MODEL=dcgan`)."""

import sys

import hydra
from omegaconf import DictConfig

from datamodules.errors import BadImageError, DatasetNotFoundError
from lightning_modules.guards import NonFiniteLossError
from lightning_modules.metrics import InceptionUnavailableError
from lightning_modules.run import train

# Errors whose message says all a user needs: print it, not a traceback.
USER_ERRORS = (DatasetNotFoundError, BadImageError, NonFiniteLossError, InceptionUnavailableError)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    optimized = cfg.get("optimized_metric")
    return metrics.get(optimized) if optimized else None


if __name__ == "__main__":
    main()

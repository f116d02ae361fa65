"""Evaluate or sample any genlab checkpoint: `python evaluate.py ckpt_path=<file> [num_samples=...]`.

`make evaluate CKPT=...` and `make sample CKPT=... N=64` call this. The model, data and their
settings come from the checkpoint's own config.
"""

import sys

import hydra
from omegaconf import DictConfig

from datamodules.errors import BadImageError, DatasetNotFoundError
from genlab.checkpoints import CheckpointError, quote_checkpoint_paths
from genlab.evaluation.evaluate_checkpoint import evaluate, write_samples
from genlab.evaluation.measure import EvaluationSettingError
from genlab.known_warnings import silence_known_warnings
from lightning_modules.metrics.feature_extractors import InceptionUnavailableError
from lightning_modules.metrics.fid_kid_is import TooFewSamplesError

# Errors whose message says all a user needs: print it, not a traceback.
USER_ERRORS = (
    CheckpointError,
    EvaluationSettingError,
    TooFewSamplesError,
    DatasetNotFoundError,
    BadImageError,
    InceptionUnavailableError,
)


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    if not cfg.ckpt_path:
        print("error: say which checkpoint: ckpt_path=<file> (make evaluate CKPT=<file>)", file=sys.stderr)
        sys.exit(2)
    silence_known_warnings()
    try:
        if cfg.mode == "sample":
            write_samples(cfg)
        else:
            evaluate(cfg)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    sys.argv = quote_checkpoint_paths(sys.argv)
    main()

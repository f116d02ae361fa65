"""Evaluate or sample any genlab checkpoint: `python evaluate.py ckpt_path=<file> [num_samples=...]`.

`make evaluate CKPT=...` and `make sample CKPT=... N=64` call this. The model, data and their
settings come from the checkpoint's own config.
"""

import sys

import hydra
from omegaconf import DictConfig

from foundation.errors import exit_on_user_error
from genlab.checkpoints import quote_checkpoint_paths
from genlab.evaluation.evaluate_checkpoint import evaluate, write_samples
from genlab.known_warnings import silence_known_warnings


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
    except Exception as error:
        exit_on_user_error(error)  # a UserError: its message on one line, exit 1, no traceback
        raise


if __name__ == "__main__":
    sys.argv = quote_checkpoint_paths(sys.argv)
    main()

"""genlab tooling that train.py and evaluate.py call: runs, checkpoints, loggers, evaluation, sweeps, compare."""

"""Tooling tests: train.py and evaluate.py end to end, checkpoints, loggers, sweeps, compare, notebooks."""

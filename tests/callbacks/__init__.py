"""Callback tests: gradient-norm monitor and the interruption checkpoint."""

"""Metric tests: feature extractors, FID/KID/IS, caches and the training-time metrics callback."""

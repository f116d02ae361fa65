"""Sample-quality measures: feature extractors, the feature classifier, FID/KID/IS, precision/recall, coverage."""

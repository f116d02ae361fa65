"""Errors about data that tell people what to do."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is missing and could not be downloaded."""


class BadImageError(ValueError):
    """An image file cannot be used as it is."""

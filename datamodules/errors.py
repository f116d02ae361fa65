"""Errors about data that tell people what to do."""

from foundation.errors import UserError


class DatasetNotFoundError(UserError, FileNotFoundError):
    """A dataset is missing and could not be downloaded."""


class BadImageError(UserError, ValueError):
    """An image file cannot be used as it is; the message names the file first."""

    def __init__(self, message: str) -> None:
        # A DataLoader worker's error reaches the main process as "Caught BadImageError in DataLoader
        # worker process 0.\nOriginal Traceback ... BadImageError: <message>": keep only the message.
        if message.startswith(f"Caught {type(self).__name__}"):
            message = message.rsplit(f"{type(self).__name__}: ", 1)[-1].strip()
        super().__init__(message)

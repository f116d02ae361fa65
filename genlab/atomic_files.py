"""Files that are either whole or absent: written beside their target, fsynced, then renamed over it.

A rename within one folder (one filesystem) is atomic, so a kill or a full disk during the write
leaves the previous file as it was; only a `<name>.partial` temporary may remain, and
`remove_stale_temporaries` clears those when the next run starts.
"""

import errno
import io
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)
TEMPORARY_SUFFIX = ".partial"


class DiskFullError(OSError):
    """No space left to write a file; the message names it and the space it needs."""


def temporary_path(path: Path) -> Path:
    return path.with_name(path.name + TEMPORARY_SUFFIX)


def write_atomically(path: str | Path, data: bytes | memoryview) -> None:
    """Replace `path` by `data` in one step; on any failure the old file stays and the temporary goes."""
    path = Path(path)
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the rename makes them the file
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise disk_full(path, len(data)) from error
        raise
    sync_folder(path.parent)


def torch_save_atomically(value: Any, path: str | Path) -> None:
    """`torch.save(value, path)`, whole or not at all."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    write_atomically(path, buffer.getbuffer())


def sync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX keeps it in the folder's entry); a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def disk_full(path: Path, needed_bytes: int) -> DiskFullError:
    free_bytes = shutil.disk_usage(path.parent).free
    return DiskFullError(
        f"Disk full: writing {path} needs {needed_bytes / 2**20:.1f} MiB and {free_bytes / 2**20:.1f} MiB are free "
        f"there; the previous {path.name} (if any) is intact. Free some space (old runs under outputs/) and "
        "resume from the last checkpoint, or write elsewhere with paths.log_dir=<folder on another disk>.",
    )


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the `*.partial` files a killed run left in `folder`; returns what was removed."""
    stale = sorted(Path(folder).glob(f"*{TEMPORARY_SUFFIX}"))
    for path in stale:
        path.unlink(missing_ok=True)
        log.info("Removed %s, left by a run killed while saving", path)
    return stale

"""Cached files that say what they were computed from, built by one process while the others wait.

Beside each cached `<name>.pt` lies `<name>.json`: {"computed_from": {...}, "rows": n}. A cached
file is used only when its record equals what the caller would compute it from and the file holds
that many rows; anything else (no record, another identity, a tampered or truncated file) is
recomputed. The file name carries a hash of the identity, so different data never share a name.
"""

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from filelock import FileLock
from torch import Tensor

from genlab.atomic_files import torch_save_atomically, write_atomically

log = logging.getLogger(__name__)


def as_json(value: object) -> object:
    """`value` as it reads back from JSON (tuples become lists, paths strings), for comparing records."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def record_path(path: Path) -> Path:
    return path.with_suffix(".json")


def matching_record(path: Path, computed_from: dict, rows: int | None = None) -> dict | None:
    """The record beside `path` when the file exists and was computed from `computed_from` (and holds `rows`)."""
    if not path.is_file() or not record_path(path).is_file():
        return None
    try:
        record = json.loads(record_path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        log.warning("Recomputing %s: its record cannot be read (%s)", path, error)
        return None
    if not isinstance(record, dict) or record.get("computed_from") != as_json(computed_from):
        log.warning("Recomputing %s: its record says it was computed from something else", path)
        return None
    if rows is not None and record.get("rows") != rows:
        log.warning("Recomputing %s: its record says %s rows, expected %d", path, record.get("rows"), rows)
        return None
    return record


def write_record(path: Path, computed_from: dict, rows: int) -> None:
    """Write the record beside `path` (renamed into place, so a killed run leaves none half-written)."""
    record = json.dumps({"computed_from": as_json(computed_from), "rows": rows}, indent=2) + "\n"
    write_atomically(record_path(path), record.encode())


def save_atomically(value: object, path: Path) -> None:
    """torch.save to `path`, renamed when complete so a killed run leaves no broken cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record_path(path).unlink(missing_ok=True)  # a file without its record is never read
    torch_save_atomically(value, path)


def without_hashes(value: object) -> object:
    if isinstance(value, dict):
        return {key: without_hashes(item) for key, item in value.items() if key != "sha1"}
    return value


def summary(computed_from: dict) -> str:
    """One line of what a cache was computed from (split hashes left out; they are in the record)."""
    return json.dumps(without_hashes(as_json(computed_from)), sort_keys=True).replace('"', "")


def cached_tensor(path: Path, compute: Callable[[], Tensor], computed_from: dict, what: str) -> Tensor:
    """`compute()` saved at `path` with its record, or what an earlier call with the same identity saved there."""
    record = matching_record(path, computed_from)
    if record is not None:
        try:
            value = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError) as error:
            log.warning("Recomputing the unreadable cache file %s (%s)", path, error)
        else:
            if len(value) == record.get("rows"):
                log.info(
                    "Using cached %s (%d rows) from %s, computed from %s",
                    what,
                    len(value),
                    path,
                    summary(computed_from),
                )
                return value
            log.warning("Recomputing %s: it holds %d rows, its record says %s", path, len(value), record.get("rows"))
    value = compute()
    save_atomically(value, path)
    write_record(path, computed_from, len(value))
    return value


def global_rank() -> int:
    """This process's rank: from torch.distributed when it is set up, else from the launcher's environment."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if name in os.environ:
            return int(os.environ[name])
    return 0


def build_on_rank_zero(
    path: Path,
    is_built: Callable[[], bool],
    build: Callable[[], None],
    poll_seconds: float = 1.0,
    timeout_seconds: float = 3 * 3600,
) -> None:
    """Rank 0 builds the cached file `path` (under a file lock, so parallel runs on one cache build it once);
    every other rank waits until it is built, then all read the same file.

    With a process group the others wait at a barrier. Metrics are built before Lightning creates
    the process group, and SLURM or torchrun start every rank at once, so without one they poll.
    """
    if global_rank() == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.with_suffix(".lock"))):
            if not is_built():
                build()
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        return
    waited = 0.0
    while not is_built():
        if waited > timeout_seconds:
            raise TimeoutError(f"Rank {global_rank()} waited {waited:.0f} s for rank 0 to write {path}")
        time.sleep(poll_seconds)
        waited += poll_seconds

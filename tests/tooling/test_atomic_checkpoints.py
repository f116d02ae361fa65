"""Checkpoint writes that survive a kill or a full disk: the previous checkpoint always stays loadable.

The failures are simulated where the issue saw them: `$TMPDIR` on another filesystem than
`outputs/` (so a rename across them fails with EXDEV and a writer falls back to copying), and a
write into the checkpoint folder that stops halfway, by a kill (KeyboardInterrupt) or a full disk.
"""

import builtins
import errno
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint

from genlab.atomic_files import DiskFullError
from genlab.checkpoints import AtomicCheckpointIO, load_weights_only
from genlab.run import remove_checkpoint_temporaries


class HalfWrites:
    """A file whose first write stores half its bytes, then raises `error`."""

    def __init__(self, handle, error: BaseException) -> None:
        self.handle, self.error = handle, error

    def write(self, data) -> int:
        self.handle.write(bytes(data)[: len(data) // 2])
        self.handle.flush()
        raise self.error

    def __getattr__(self, name: str):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.handle.close()


@pytest.fixture
def checkpoint_io(make_config):
    """The checkpoint writer of genlab's configured trainer."""
    trainer = instantiate(make_config("experiment=dcgan").trainer, logger=False, enable_checkpointing=False)
    return trainer.strategy.checkpoint_io


def break_writes_into(folder: Path, error: BaseException, monkeypatch, tmp_path: Path) -> None:
    """Stage temporaries on "another filesystem" and make every write into `folder` stop halfway."""
    staging = tmp_path / "tmpdir"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    real_open, real_rename = builtins.open, os.rename

    def open_(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return HalfWrites(handle, error) if "w" in mode and Path(file).parent == folder else handle

    def rename(source, destination, *args, **kwargs):
        if Path(source).parent != Path(destination).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(source, destination, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(shutil, "_USE_CP_SENDFILE", False)  # copy through write(), as on any filesystem


def test_genlab_trainers_write_checkpoints_atomically(checkpoint_io) -> None:
    assert isinstance(checkpoint_io, AtomicCheckpointIO)


@pytest.mark.parametrize(
    "failure", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")], ids=["kill", "full disk"]
)
def test_a_save_that_stops_halfway_keeps_the_previous_checkpoint(checkpoint_io, failure, tmp_path, monkeypatch) -> None:
    folder = tmp_path / "checkpoints"
    last = folder / "last.ckpt"
    checkpoint_io.save_checkpoint({"state_dict": {"weight": torch.zeros(1000)}, "epoch": 1}, last)
    break_writes_into(folder, failure, monkeypatch, tmp_path)
    with pytest.raises((KeyboardInterrupt, OSError)):
        checkpoint_io.save_checkpoint({"state_dict": {"weight": torch.ones(1000)}, "epoch": 2}, last)
    monkeypatch.undo()
    previous = load_weights_only(last)
    assert previous["epoch"] == 1 and torch.equal(previous["state_dict"]["weight"], torch.zeros(1000))
    assert sorted(path.name for path in folder.iterdir()) == ["last.ckpt"]  # no temporary left behind


def test_a_full_disk_is_one_line_naming_the_file_and_the_space_it_needs(checkpoint_io, tmp_path, monkeypatch) -> None:
    folder = tmp_path / "checkpoints"
    break_writes_into(folder, OSError(errno.ENOSPC, "No space left on device"), monkeypatch, tmp_path)
    folder.mkdir()
    with pytest.raises(DiskFullError) as error:
        checkpoint_io.save_checkpoint({"weight": torch.zeros(2**18)}, folder / "last.ckpt")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"Disk full: writing {folder / 'last.ckpt'} needs 1.0 MiB and ")
    assert "MiB are free there" in message


def test_temporaries_of_a_killed_save_are_removed_at_start_up(make_config, tmp_path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "last.ckpt.partial").write_bytes(b"half a checkpoint")
    (folder / "last.ckpt").write_bytes(b"the good one")
    trainer = instantiate(
        make_config("experiment=dcgan").trainer, logger=False, callbacks=[ModelCheckpoint(dirpath=folder)]
    )
    remove_checkpoint_temporaries(trainer)
    assert sorted(path.name for path in folder.iterdir()) == ["last.ckpt"]

"""Runs never share a folder: two runs of the same second get `<date_time>` and `<date_time>_1`."""

import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from genlab.run_folders import UniqueRunFolder, claim_run_folder
from tests.helpers.config import ROOT, requires_mnist

CLAIM = """
import sys, time
from pathlib import Path
from omegaconf import OmegaConf

from genlab.run_folders import UniqueRunFolder, claim_run_folder
go = Path(sys.argv[1])
while not go.exists():  # both processes are imported and waiting: released together
    time.sleep(0.01)
print(claim_run_folder(sys.argv[2]))
"""


def test_two_processes_started_together_get_two_folders(tmp_path) -> None:
    go, base = tmp_path / "go", tmp_path / "outputs" / "dcgan" / "2026-01-01_12-00-00"
    processes = [
        subprocess.Popen([sys.executable, "-c", CLAIM, str(go), str(base)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    time.sleep(0.5)
    go.touch()
    folders = sorted(process.communicate(timeout=60)[0].strip() for process in processes)
    assert folders == [str(base), f"{base}_1"]
    assert all(Path(folder).is_dir() for folder in folders)


def test_a_taken_folder_is_never_reused(tmp_path) -> None:
    base = tmp_path / "run"
    assert [claim_run_folder(base) for _ in range(3)] == [base, tmp_path / "run_1", tmp_path / "run_2"]


@pytest.mark.slow
@requires_mnist
def test_train_never_writes_into_the_folder_of_another_run_of_the_same_second(tmp_path) -> None:
    """Every folder the run could be named after is already another run's: it must not touch them.

    The run stops at start-up (its checkpoint is missing), so it also shows that a failed start
    leaves no folder of its own behind.
    """
    outputs = tmp_path / "outputs"
    start = datetime.now()
    seconds = [start + timedelta(seconds=offset) for offset in range(-2, 300)]
    taken = [outputs / "dcgan" / f"dcgan-mnist-{second:%Y-%m-%d_%H-%M-%S}" for second in seconds]
    for folder in taken:
        folder.mkdir(parents=True)
        (folder / "other_run.txt").write_text("mine")
    absent = tmp_path / "absent.ckpt"
    result = subprocess.run(
        [sys.executable, "train.py", "experiment=dcgan", "logger=csv", "metrics=none"]
        + ["callbacks.model_checkpoint.monitor=null", f"paths.log_dir={outputs}", f"ckpt_path={absent}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == f"error: No checkpoint at {absent}"
    assert all(sorted(path.name for path in folder.iterdir()) == ["other_run.txt"] for folder in taken)
    assert sorted((outputs / "dcgan").iterdir()) == sorted(taken)


def hydra_config(run_dir: Path, hydra_overrides: list[str]):
    return OmegaConf.create({"hydra": {"run": {"dir": str(run_dir)}, "overrides": {"hydra": hydra_overrides}}})


def test_the_hydra_callback_moves_a_second_run_and_keeps_a_folder_the_user_named(tmp_path) -> None:
    base = tmp_path / "2026-01-01_12-00-00"
    first, second = hydra_config(base, []), hydra_config(base, [])
    UniqueRunFolder().on_run_start(first)
    UniqueRunFolder().on_run_start(second)
    assert (first.hydra.run.dir, second.hydra.run.dir) == (str(base), f"{base}_1")
    # hydra.run.dir=<folder> (resuming into a run's own folder) is the user's choice: kept as given
    named = hydra_config(base, [f"hydra.run.dir={base}"])
    UniqueRunFolder().on_run_start(named)
    assert named.hydra.run.dir == str(base)

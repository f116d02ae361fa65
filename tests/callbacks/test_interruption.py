"""SIGTERM and Ctrl-C save the step in progress, say how to resume, and a resumed run continues exactly."""

import shlex
import signal
import subprocess
import sys

import pytest
import torch

from genlab.run import train
from lightning_modules.callbacks.interruption import InterruptionCheckpoint, RunInterruptedError
from tests.helpers.config import ROOT, requires_mnist
from tests.helpers.gan import SHORT

# 2 epochs of 4 batches; a signal at global batch 5 stops in the middle of the second epoch.
RUN = [*SHORT, "trainer.max_epochs=2", "trainer.deterministic=true"]


def stop_at(batch: int, signum: int) -> list[str]:
    return [
        "+callbacks.stop._target_=tests.helpers.interruption.SignalAtBatch",
        f"+callbacks.stop.batch={batch}",
        f"+callbacks.stop.signum={int(signum)}",
    ]


@requires_mnist
@pytest.mark.slow
def test_resume_after_sigterm_mid_epoch_gives_the_weights_of_an_uninterrupted_run(tmp_path, make_config):
    def config(folder, *overrides):
        cfg = make_config("experiment=dcgan", *RUN, *overrides)
        cfg.paths.output_dir = str(tmp_path / folder)
        return cfg

    train(config("straight"))
    with pytest.raises(RunInterruptedError) as stopped:
        train(config("interrupted", *stop_at(5, signal.SIGTERM)))
    assert stopped.value.exit_code == 143
    saved = tmp_path / "interrupted" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(saved, weights_only=True)
    assert checkpoint["global_step"] == 2 * 6, "two optimizer steps for each of the 6 batches done"
    train(config("resumed", f"ckpt_path={saved}"))

    expected = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    actual = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{name} differs after a mid-epoch resume"
    assert not torch.equal(checkpoint["state_dict"]["generator.net.0.weight"], actual["generator.net.0.weight"])


@requires_mnist
def test_ctrl_c_finishes_the_batch_saves_it_and_exits_130(tmp_path, make_config):
    cfg = make_config("experiment=dcgan", *RUN, *stop_at(1, signal.SIGINT))
    # Whatever handled Ctrl-C before (Python's default, or "ignore" in a shell's background job).
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(RunInterruptedError, match="Stopped by Ctrl-C at epoch 0, step 4; saved") as stopped:
        train(cfg)
    assert stopped.value.exit_code == 130
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    assert signal.getsignal(signal.SIGINT) is before, "Ctrl-C handling must end with the run"


@requires_mnist
@pytest.mark.slow
def test_sigterm_exits_143_printing_the_command_that_resumes_it(tmp_path):
    overrides = ["experiment=dcgan", "logger=csv", "callbacks.progress_bar=null", *RUN, *stop_at(1, signal.SIGTERM)]
    command = [sys.executable, "train.py", *overrides, f"paths.log_dir={tmp_path}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 143, result.stderr[-3000:]
    (saved,) = tmp_path.rglob("last.ckpt")
    assert f"Stopped by SIGTERM at epoch 0, step 4; saved {saved}. Resume with:" in result.stderr
    resume = shlex.split(result.stderr.strip().splitlines()[-1])
    assert resume[:4] == ["make", "train", "MODEL=dcgan", f"RESUME={saved.parents[1]}"]
    assert resume[4].startswith("ARGS=")
    expected_args = [o for o in overrides if o != "experiment=dcgan"] + [f"paths.log_dir={tmp_path}"]
    assert shlex.split(resume[4].removeprefix("ARGS=")) == expected_args
    assert "Stopped by SIGTERM" in (saved.parents[1] / "train.log").read_text()


def test_resume_command_is_make_train_with_the_run_folder(tmp_path):
    callback = InterruptionCheckpoint(tmp_path / "run" / "checkpoints")
    overrides = ["experiment=glow", "data=cifar10", "ckpt_path=/old.ckpt", "logger.wandb.id=abc", "seed=3"]
    folder = (tmp_path / "run").resolve()
    assert shlex.split(callback.resume_command(overrides)) == [
        "make", "train", "MODEL=glow", f"RESUME={folder}", "ARGS=data=cifar10 seed=3"
    ]  # fmt: skip
    assert shlex.split(callback.resume_command(["data=mnist"])) == [
        "python", "train.py", f"resume={folder}", f"hydra.run.dir={folder}", "data=mnist"
    ]  # fmt: skip

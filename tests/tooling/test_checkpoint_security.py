"""Untrusted checkpoints: reading one never runs code, and its config builds only genlab's own classes.

Each test hands genlab a crafted file, through evaluation (`module_from_checkpoint`) and resume
(`ckpt_path=` in train), and checks that the one-line error names what was refused.
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from genlab.checkpoints import (
    CONFIG_KEY,
    AtomicCheckpointIO,
    CheckpointError,
    is_trusted_target,
    module_from_checkpoint,
    quote_checkpoint_paths,
    stored_config,
)
from genlab.evaluation.evaluate_checkpoint import evaluate, write_samples
from genlab.run import train
from tests.helpers.config import CONF, ROOT, requires_mnist

DATA = {"_target_": "datamodules.torchvision_datamodule.TorchvisionDataModule", "name": "mnist"}
GAN = {"_target_": "lightning_modules.gan.GAN"}


class SystemCall:
    """Unpickles into `os.system(command)`: the payload a crafted checkpoint carries."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def payload_checkpoint(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {"model": GAN, "data": DATA}
    torch.save({CONFIG_KEY: config, "state_dict": {}, "extra": SystemCall(f"touch '{marker}'")}, path)
    return path


def config_checkpoint(path: Path, config: object) -> Path:
    torch.save({CONFIG_KEY: config, "state_dict": {}}, path)
    return path


def open_config(victim: Path) -> dict:
    """A config whose model is `open(victim, "w")`: building it empties the victim file."""
    return {"model": {"_target_": "builtins.open", "_args_": [str(victim), "w"]}, "data": DATA}


def single_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "weights_only" not in message  # never torch's advice to turn the check off
    return message


def test_a_pickled_payload_is_refused_unrun(tmp_path) -> None:
    marker = tmp_path / "payload-ran"
    checkpoint = payload_checkpoint(tmp_path / "crafted.ckpt", marker)
    with pytest.raises(CheckpointError, match=r"crafted.ckpt holds the Python object '\w+\.system'") as error:
        module_from_checkpoint(checkpoint)
    single_line(error)
    assert not marker.exists()


def test_a_config_naming_builtins_open_is_refused_before_it_is_built(tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    checkpoint = config_checkpoint(tmp_path / "crafted.ckpt", open_config(victim))
    with pytest.raises(CheckpointError, match=r"build 'builtins.open' \(model._target_\)") as error:
        module_from_checkpoint(checkpoint)
    single_line(error)
    assert victim.read_text() == "precious"


@pytest.mark.parametrize(
    ("nested", "where"),
    [
        ({"optimizer": {"_target_": "os.system", "_args_": ["true"]}}, "model.optimizer._target_"),
        ({"layers": [{"_target_": "torch.load"}]}, r"model.layers\[0\]._target_"),
    ],
)
def test_untrusted_targets_deep_in_the_config_are_named(tmp_path, nested: dict, where: str) -> None:
    config = {"model": {"_target_": "lightning_modules.gan.GAN", **nested}, "data": DATA}
    with pytest.raises(CheckpointError, match=where):
        module_from_checkpoint(config_checkpoint(tmp_path / "crafted.ckpt", config))


def test_sections_never_built_from_a_file_are_not_checked() -> None:
    config = {"model": GAN, "data": DATA, "callbacks": {"stop": {"_target_": "tests.helpers.StopAtBatch"}}}
    assert stored_config({CONFIG_KEY: config}, "run.ckpt").callbacks.stop._target_ == "tests.helpers.StopAtBatch"


def test_an_interpolation_in_a_stored_config_is_refused(tmp_path) -> None:
    config = {"model": {"_target_": "lightning_modules.gan.GAN", "size": "${oc.env:HOME}"}, "data": DATA}
    with pytest.raises(CheckpointError, match=r"interpolation '\$\{oc.env:HOME\}' \(model.size\)"):
        module_from_checkpoint(config_checkpoint(tmp_path / "crafted.ckpt", config))


@pytest.mark.parametrize(
    "target",
    [
        "lightning_modules.gan.GAN",
        "datamodules.unpaired.UnpairedImageDataModule",
        "torch.optim.Adam",
        "torch.optim.lr_scheduler.LambdaLR",
        "torch.nn.ReLU",
        "lightning.pytorch.loggers.CSVLogger",
        "lightning.pytorch.Trainer",
    ],
)
def test_genlab_torch_and_lightning_classes_are_trusted(target: str) -> None:
    assert is_trusted_target(target)


@pytest.mark.parametrize(
    "target",
    ["builtins.open", "os.system", "subprocess.run", "torch.load", "torch.hub.load", "torch.nn.init.zeros_", 3, None],
)
def test_functions_and_foreign_classes_are_not(target: object) -> None:
    assert not is_trusted_target(target)


@pytest.mark.parametrize(
    "config",
    ["not a dict", {"model": "dcgan", "data": DATA}, {"model": {}, "data": DATA}, {"model": {"_target_": "x.Y"}}],
)
def test_a_malformed_stored_config_is_one_line(tmp_path, config: object) -> None:
    with pytest.raises(CheckpointError, match="stored config .* is malformed") as error:
        module_from_checkpoint(config_checkpoint(tmp_path / "malformed.ckpt", config))
    single_line(error)


# --- resume: ckpt_path= in train ---


def test_lightnings_checkpoint_reader_never_unpickles_code(tmp_path) -> None:
    """trainer.fit(ckpt_path=...) reads through AtomicCheckpointIO, whatever weights_only Lightning passes."""
    marker = tmp_path / "payload-ran"
    with pytest.raises(CheckpointError, match=r"object '\w+\.system'"):
        AtomicCheckpointIO().load_checkpoint(payload_checkpoint(tmp_path / "crafted.ckpt", marker), weights_only=False)
    assert not marker.exists()


def bad_resume_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what the one-line error says about it)."""
    text = folder / "notes.ckpt"
    text.write_text("not a checkpoint")
    truncated = folder / "truncated.ckpt"
    truncated.write_bytes(payload_checkpoint(folder / "whole.ckpt", folder / "ran").read_bytes()[:300])
    foreign = folder / "foreign.ckpt"
    torch.save({"state_dict": {}, "epoch": 3}, foreign)
    vae = {"model": {"_target_": "lightning_modules.vae.VAE"}, "data": DATA, "task_name": "vae"}
    return {
        "missing": (folder / "absent.ckpt", "No checkpoint at .*absent.ckpt"),
        "text": (text, "notes.ckpt cannot be read as a PyTorch checkpoint"),
        "truncated": (truncated, "truncated.ckpt cannot be read as a PyTorch checkpoint"),
        "foreign": (foreign, "foreign.ckpt was not written by genlab"),
        "payload": (payload_checkpoint(folder / "payload.ckpt", folder / "ran"), r"object '\w+\.system'"),
        "open": (config_checkpoint(folder / "open.ckpt", open_config(folder / "victim")), "build 'builtins.open'"),
        "malformed": (config_checkpoint(folder / "malformed.ckpt", {"model": []}), "stored config .* malformed"),
        "other model": (config_checkpoint(folder / "vae.ckpt", vae), "holds a 'lightning_modules.vae.VAE'.*=vae"),
        "no weights": (config_checkpoint(folder / "empty.ckpt", {"model": GAN, "data": DATA}), "weights do not fit"),
    }


@pytest.mark.slow
@requires_mnist
def test_resume_refuses_each_bad_checkpoint_in_one_line(tmp_path, make_config) -> None:
    for name, (checkpoint, message) in bad_resume_files(tmp_path).items():
        cfg = make_config("experiment=dcgan", *quote_checkpoint_paths([f"ckpt_path={checkpoint}"]))
        with pytest.raises(CheckpointError, match=message) as error:
            train(cfg)
        assert "\n" not in str(error.value) and "weights_only" not in str(error.value), name
    assert not (tmp_path / "ran").exists() and not (tmp_path / "victim").exists()


def test_checkpoint_paths_with_equals_signs_and_spaces_are_quoted_for_hydra() -> None:
    arguments = ["train.py", "ckpt_path=runs/a b/epoch=0-step=20.ckpt", "+ckpt_path=it's.ckpt", "x=a=b"]
    assert quote_checkpoint_paths(arguments) == [
        "train.py",
        "ckpt_path='runs/a b/epoch=0-step=20.ckpt'",
        "+ckpt_path='it\\'s.ckpt'",
        "x=a=b",  # only checkpoint paths: other values keep Hydra's grammar
    ]
    assert quote_checkpoint_paths(["ckpt_path=plain/last.ckpt", "ckpt_path='quoted=yes'"]) == [
        "ckpt_path=plain/last.ckpt",
        "ckpt_path='quoted=yes'",
    ]


@requires_mnist
@pytest.mark.parametrize("crafted", ["payload", "open"])
def test_evaluate_and_sample_refuse_both_crafted_files(tmp_path, crafted: str) -> None:
    marker, victim = tmp_path / "payload-ran", tmp_path / "victim.txt"
    victim.write_text("precious")
    if crafted == "payload":
        checkpoint = payload_checkpoint(tmp_path / "crafted.ckpt", marker)
    else:
        checkpoint = config_checkpoint(tmp_path / "crafted.ckpt", open_config(victim))
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for mode in ("evaluate", "sample"):
            cfg = compose(config_name="evaluate", overrides=[f"ckpt_path={checkpoint}", f"mode={mode}"])
            with pytest.raises(CheckpointError, match="system" if crafted == "payload" else "builtins.open"):
                write_samples(cfg) if mode == "sample" else evaluate(cfg)
    assert not marker.exists() and victim.read_text() == "precious"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("target", ["evaluate", "sample"])
def test_make_passes_a_checkpoint_path_with_spaces_and_equals_signs_whole(target: str) -> None:
    dry_run = subprocess.run(
        ["make", "-n", target, "CKPT=my runs/epoch=0-step=20.ckpt"], cwd=ROOT, capture_output=True, text=True
    )
    (command,) = [line for line in dry_run.stdout.splitlines() if "evaluate.py" in line]
    assert "ckpt_path=my runs/epoch=0-step=20.ckpt" in shlex.split(command)


@pytest.mark.slow
@requires_mnist
def test_the_command_line_refuses_a_payload_in_one_line_and_leaves_no_run_folder(tmp_path) -> None:
    marker = tmp_path / "payload-ran"
    # Lightning's own checkpoint names hold '=' and folders may hold spaces: both accepted.
    checkpoint = payload_checkpoint(tmp_path / "my runs" / "epoch=0-step=20.ckpt", marker)
    outputs = tmp_path / "outputs"
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "experiment=dcgan",
            "logger=csv",
            "metrics=none",
            "callbacks.model_checkpoint.monitor=null",
            f"paths.log_dir={outputs}",
            f"ckpt_path={checkpoint}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert f"error: {checkpoint} holds the Python object" in result.stderr
    assert "Traceback" not in result.stderr and "weights_only" not in result.stderr
    assert not marker.exists()
    assert not any(path.is_file() for path in outputs.rglob("*"))  # no half-made run folder

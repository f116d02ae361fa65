"""Checkpoints written before the layered layout (tests/fixtures/legacy_checkpoints) still load, evaluate and resume.

Their stored configs name the flat module paths of that time; `genlab.legacy_paths` maps them where a
checkpoint is read. The fixtures' README says how they were made.
"""

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genlab.checkpoints import CONFIG_KEY, module_from_checkpoint, read_checkpoint
from genlab.legacy_paths import MOVED_MODULES, SPLIT_MODULES, current_path
from lightning_modules.gan import GAN
from lightning_modules.vae import VAE
from tests.helpers.config import ROOT, requires_mnist

LEGACY = ROOT / "tests" / "fixtures" / "legacy_checkpoints"


def targets(node: object) -> list[str]:
    if isinstance(node, dict):
        return [value for key, value in node.items() if key == "_target_"] + [
            target for value in node.values() for target in targets(value)
        ]
    if isinstance(node, list):
        return [target for value in node for target in targets(value)]
    return []


def test_every_new_location_exists() -> None:
    for new in MOVED_MODULES.values():
        importlib.import_module(new)
    for by_name, default in SPLIT_MODULES.values():
        importlib.import_module(default)
        for name, module in by_name.items():
            assert hasattr(importlib.import_module(module), name), f"{module} has no {name}"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("lightning_modules.gan.GAN", "lightning_modules.gan.GAN"),
        ("lightning_modules.callbacks.SampleGrid", "lightning_modules.callbacks.image_grids.SampleGrid"),
        ("lightning_modules.callbacks.image_grids.SampleGrid", "lightning_modules.callbacks.image_grids.SampleGrid"),
        (
            "lightning_modules.metrics.classifier_feature_extractor",
            "lightning_modules.metrics.feature_extractors.classifier_feature_extractor",
        ),
        (
            "lightning_modules.metrics.GenerativeMetrics",
            "lightning_modules.callbacks.generative_metrics.GenerativeMetrics",
        ),
        ("lightning_modules.loggers.wandb_logger", "genlab.loggers.wandb_logger"),
        ("lightning_modules.losses.beta_warmup", "lightning_modules.objectives.elbo.beta_warmup"),
        (
            "lightning_modules.likelihoods.BernoulliLikelihood",
            "lightning_modules.objectives.likelihoods.BernoulliLikelihood",
        ),
        ("torch.optim.Adam", "torch.optim.Adam"),
    ],
)
def test_old_paths_map_to_new_ones(old: str, new: str) -> None:
    assert current_path(old) == new


@pytest.mark.parametrize(("folder", "family"), [("dcgan", GAN), ("vae", VAE)])
def test_a_legacy_checkpoint_loads_with_every_target_at_its_new_place(folder: str, family: type) -> None:
    path = LEGACY / folder / "checkpoints" / "last.ckpt"
    stored = read_checkpoint(path)[CONFIG_KEY]
    for target in targets(stored):
        module_name, _, name = target.rpartition(".")
        assert hasattr(importlib.import_module(module_name), name), target
    module, _ = module_from_checkpoint(path)
    assert isinstance(module, family)


def legacy_run(tmp_path: Path, folder: str) -> Path:
    """A copy of a legacy run folder: resume writes into it, the fixture stays as it was."""
    return Path(shutil.copytree(LEGACY / folder, tmp_path / folder))


@pytest.mark.slow
@requires_mnist
def test_make_evaluate_scores_a_legacy_checkpoint(tmp_path: Path) -> None:
    run = legacy_run(tmp_path, "dcgan")
    command = [
        sys.executable,
        "evaluate.py",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        f"output_dir={tmp_path / 'evaluation'}",
        "evaluate.num_samples=60",
        "evaluate.reference_split=test",
        "evaluate.reference_size=100",
        "evaluate.kid_subset_size=50",
        "evaluate.kid_subsets=2",
        "evaluate.is_splits=2",
        "grid_samples=4",
    ]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    (report,) = (tmp_path / "evaluation").glob("*.json")
    metrics = json.loads(report.read_text())
    assert metrics["metrics"]["fid"] > 0


@pytest.mark.slow
@requires_mnist
def test_train_resumes_a_legacy_run_folder(tmp_path: Path) -> None:
    run = legacy_run(tmp_path, "dcgan")
    overrides = [
        override
        for override in yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
        if not override.startswith(("paths.log_dir=", "trainer.max_steps="))
    ]
    command = [sys.executable, "train.py", *overrides, "trainer.max_steps=4", f"resume={run}", f"hydra.run.dir={run}"]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    # The fixture was written in another folder, so Lightning keeps its last.ckpt and saves last-v1.ckpt.
    newest = max((run / "checkpoints").glob("last*.ckpt"), key=lambda path: path.stat().st_mtime)
    resumed = read_checkpoint(newest)
    assert resumed["global_step"] > read_checkpoint(LEGACY / "dcgan" / "checkpoints" / "last.ckpt")["global_step"]
    assert resumed[CONFIG_KEY]["model"]["generator"]["_target_"] == "lightning_modules.networks.dcgan.DCGANGenerator"
    assert resumed[CONFIG_KEY]["trainer"]["plugins"][0]["_target_"] == "genlab.checkpoints.AtomicCheckpointIO"

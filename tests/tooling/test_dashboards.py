"""What a W&B dashboard would show is what the run folder holds: an offline run read back with wandb's
own reader (`wandb leet inspect`), its images, summary, config, name and checkpoint artifacts; the
best-value metric sweeps rank by; resuming a run by its folder; debug runs without W&B."""

import csv
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image
from torchvision.utils import make_grid, save_image

from genlab.checkpoints import LOGGER_VERSIONS_KEY, read_checkpoint
from genlab.loggers import run_group, wandb_logger
from genlab.resume import ResumeError
from genlab.run import train
from lightning_modules.callbacks.best_metric import BestMetric
from lightning_modules.callbacks.image_grids import grid_to_uint8
from tests.helpers.config import CONF, compose_config, requires_mnist

RUN_NAME = "vae-mnist-2026-01-01_00-00-00"  # as conf/hydra names a run folder
TINY_VAE = [
    "experiment=vae",
    "logger=wandb",
    "metrics=none",
    "test=false",
    "trainer.accelerator=cpu",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "data.batch_size=32",
]


def wandb_inspect(run_dir: Path, *options: str) -> str:
    """`wandb leet inspect --json`: wandb's own reader of an offline run's .wandb log."""
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", *options, str(run_dir)]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout


def offline_runs(output: Path) -> list[Path]:
    return sorted((output / "wandb").glob("offline-run-*"))


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A tiny VAE run (2-D latent, so every VAE image kind) logged to W&B offline, read back."""
    output = tmp_path_factory.mktemp("runs") / RUN_NAME
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_DATA_DIR", str(output.parent / "wandb-data"))  # artifact staging, not ~/.local
        cfg = compose_config(
            output,
            [*TINY_VAE, "trainer.max_epochs=2", "model.encoder.latent_dim=2", "logger.wandb.log_model=true"],
        )
        train(cfg)
    (run_dir,) = offline_runs(output)
    records = [json.loads(line) for line in wandb_inspect(run_dir).splitlines()]
    return SimpleNamespace(
        output=output, run_dir=run_dir, records=records, state=json.loads(wandb_inspect(run_dir, "--summary"))
    )


def records_of(run: SimpleNamespace, kind: str) -> list[dict]:
    return [record[kind] for record in run.records if record["type"] == kind]


def csv_values(output: Path, metric: str) -> list[float]:
    with open(output / "csv" / "version_0" / "metrics.csv", newline="") as file:
        return [float(row[metric]) for row in csv.DictReader(file) if row.get(metric)]


def png_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# --- images ---


def test_grids_become_the_bytes_save_image_writes(tmp_path):
    grid = make_grid(torch.rand(6, 1, 5, 7), nrow=3)
    save_image(grid, tmp_path / "reference.png")
    pixels = grid_to_uint8(grid)
    assert pixels.dtype == np.uint8 and pixels.shape == (*grid.shape[1:], 3)
    assert np.array_equal(pixels, png_pixels(tmp_path / "reference.png"))
    assert pixels.mean() > 50, "a grid in [0, 1] must not arrive black"


@requires_mnist
@pytest.mark.slow
def test_every_image_wandb_got_equals_the_local_png(offline_run):
    logged = []
    for history in records_of(offline_run, "history"):
        item = history["item"]
        for key in (name.removesuffix("._type") for name in item if name.endswith("._type")):
            (filename,) = item[f"{key}.filenames"]
            (caption,) = item[f"{key}.captions"]
            step = int(item["trainer/global_step"])
            local = offline_run.output / "images" / f"{key.replace('/', '_')}_step{step:07d}.png"
            assert np.array_equal(png_pixels(offline_run.run_dir / "files" / filename), png_pixels(local)), local
            assert caption, f"{key} has no caption"
            logged.append(key)
    assert {"samples", "reconstructions", "interpolations", "latent_means_val"} <= set(logged)
    assert len(logged) == len(list((offline_run.output / "images").glob("*.png")))


# --- the summary sweeps and the runs table rank by ---


@requires_mnist
@pytest.mark.slow
def test_summary_holds_the_best_value_the_kept_checkpoint_has(offline_run):
    values = csv_values(offline_run.output, "val/nelbo_nats")
    assert len(values) == 2
    (kept,) = offline_run.output.glob("checkpoints/best-*.ckpt")
    checkpoint_score = torch.load(kept, map_location="cpu", weights_only=True)["callbacks"]
    score = next(state["best_model_score"] for name, state in checkpoint_score.items() if "ModelCheckpoint" in name)
    summary = offline_run.state["summary"]
    assert summary["val/nelbo_nats"] == {"min": pytest.approx(min(values))}
    assert summary["val/nelbo_nats_best"] == pytest.approx(min(values)) == pytest.approx(float(score))
    assert csv_values(offline_run.output, "val/nelbo_nats_best") == [min(values[: i + 1]) for i in range(2)]


def test_best_metric_follows_the_checkpoint_rule_and_skips_nan():
    for mode, values, expected in [
        ("min", [5.0, 3.0, float("nan"), 4.0], [5.0, 3.0, 3.0, 3.0]),
        ("max", [float("nan"), 1.0, 2.0, 0.5], [None, 1.0, 2.0, 2.0]),
    ]:
        callback, bests = BestMetric("val/x", mode), []
        for value in values:
            metrics = {"val/x": torch.tensor(value)}
            trainer = SimpleNamespace(sanity_checking=False, loggers=[], callback_metrics=metrics)
            callback.on_validation_end(trainer, None)
            best = trainer.callback_metrics.get("val/x_best")
            bests.append(None if best is None else float(best))
        assert bests == expected, mode


# --- config, names, groups, artifacts ---


@requires_mnist
@pytest.mark.slow
def test_config_is_logged_once_with_paths_in_their_own_group(offline_run):
    config = offline_run.state["config"]
    assert config["model"]["optimizer"]["lr"] == pytest.approx(1e-3)
    assert "config" not in config and "lr" not in config, "a second copy beside the nested config"
    outside_paths = json.dumps({key: value for key, value in config.items() if key != "paths"})
    assert str(offline_run.output) not in outside_paths and "/" + RUN_NAME not in outside_paths
    assert config["paths"]["output_dir"] == str(offline_run.output)


@requires_mnist
@pytest.mark.slow
def test_run_is_named_after_its_folder_and_holds_its_checkpoints_as_artifacts(offline_run):
    (run,) = records_of(offline_run, "run")
    assert run["display_name"] == offline_run.state["name"] == RUN_NAME == offline_run.output.name
    assert run["run_group"] == "vae"
    artifacts = records_of(offline_run, "artifact")
    best = next(artifact for artifact in artifacts if "best" in artifact["aliases"])
    assert best["type"] == "model" and best["name"] == f"model-{run['run_id']}"
    (entry,) = best["manifest"]["contents"]
    (kept,) = offline_run.output.glob("checkpoints/best-*.ckpt")
    assert Path(entry["local_path"]).read_bytes() == kept.read_bytes(), "wandb sync would upload another file"


def test_logger_is_named_after_the_output_folder_and_uploads_checkpoints_in_sweeps(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = wandb_logger(save_dir=str(tmp_path / "dcgan-mnist-2026-11-30_04-03-54"), group="dcgan")
    assert logger._wandb_init["name"] == "dcgan-mnist-2026-11-30_04-03-54"  # what wandb.init receives
    assert logger._log_model is False
    assert wandb_logger(save_dir=str(tmp_path / "0"), sweep_id="2026-11-30_04-03-54")._log_model is True
    assert run_group("dcgan", "2026-11-30_04-03-54") == "2026-11-30_04-03-54"


def compose_with_hydra(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def test_run_folder_is_model_data_time_and_a_local_sweeps_folder_is_its_group():
    cfg = compose_with_hydra(["experiment=cgan", "data=fashion_mnist", "paths.log_dir=out"])
    folder = Path(cfg.hydra.run.dir)
    assert folder.parent == Path("out/cgan") and folder.name.startswith("cgan-fashion_mnist-20")
    sweep_id = "2026-11-30_04-03-54"
    cfg = compose_with_hydra(
        ["experiment=vae", "hparams_search=optuna", "optimized_metric=x", f"sweep_id={sweep_id}", "paths.log_dir=out"]
    )
    assert cfg.hydra.sweep.dir == f"out/vae/multirun/{sweep_id}" and cfg.hydra.sweeper.study_name == sweep_id
    assert run_group(cfg.logger.wandb.group, cfg.logger.wandb.sweep_id) == sweep_id


# --- debug runs ---


@pytest.mark.parametrize("preset", ["fdr", "limit", "overfit"])
def test_debug_presets_log_to_csv_only(preset, tmp_path):
    cfg = compose_with_hydra([f"debug={preset}", "experiment=dcgan", f"paths.output_dir={tmp_path}"])
    assert list(cfg.logger) == ["csv"], "a debug run must not create a W&B run"


# --- resume by folder ---


@requires_mnist
@pytest.mark.slow
def test_resume_by_folder_goes_on_from_last_ckpt_in_the_same_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    output = tmp_path / RUN_NAME
    train(compose_config(output, [*TINY_VAE, "trainer.max_epochs=1"]))
    first_id = read_checkpoint(output / "checkpoints" / "last.ckpt")[LOGGER_VERSIONS_KEY]["WandbLogger"]

    train(compose_config(output, [*TINY_VAE, "trainer.max_epochs=2", f"resume={output}"]))
    assert read_checkpoint(output / "checkpoints" / "last.ckpt")["global_step"] == 6  # 3 batches more
    assert [run.name.rsplit("-", 1)[1] for run in offline_runs(output)] == [first_id, first_id]
    with open(output / "csv" / "version_1" / "metrics.csv", newline="") as file:
        steps = [int(row["step"]) for row in csv.DictReader(file)]
    assert min(steps) >= 3, "the resumed leg started again from step 0"
    with pytest.raises(ResumeError, match=r"differs from the run's in model.decoder.latent_dim, model.encoder.latent"):
        train(compose_config(output, [*TINY_VAE, "model.encoder.latent_dim=5", f"resume={output}"]))


def test_resume_needs_a_folder_with_last_ckpt(tmp_path):
    with pytest.raises(ResumeError, match=r"no checkpoints/last.ckpt there"):
        train(compose_config(tmp_path / "new", ["experiment=dcgan", f"resume={tmp_path}"]))

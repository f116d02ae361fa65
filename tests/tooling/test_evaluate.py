"""`evaluate.py` end to end on a checkpoint of each family, its cache, grids and its errors."""

import json
import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import DictConfig
from PIL import Image

import genlab.evaluation.measure as evaluation
from datamodules.torchvision_datamodule import TorchvisionDataModule
from genlab import compare
from genlab.checkpoints import CONFIG_KEY, CheckpointError
from genlab.evaluation.evaluate_checkpoint import evaluate, write_samples
from genlab.evaluation.measure import EvaluationSettings, generated_metrics
from genlab.run import compose_conf, train
from lightning_modules.metrics.feature_extractors import InceptionUnavailableError, classifier_feature_extractor
from lightning_modules.metrics.fid_kid_is import TooFewSamplesError
from tests.helpers.config import DATA_ROOT, ROOT, compose_config, requires_mnist
from tests.helpers.reports import table_after

pytestmark = requires_mnist
# Small but valid: 200 samples against 400 reference images.
SMALL = [
    "evaluate.num_samples=200",
    "evaluate.reference_size=400",
    "evaluate.kid_subset_size=50",
    "evaluate.kid_subsets=5",
    "evaluate.is_splits=2",
    "evaluate.likelihood_batches=2",
    "grid_samples=20",
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory):
    """experiment -> last.ckpt of a run of a few batches, trained once per module."""
    trained: dict[str, Path] = {}

    def checkpoint(experiment: str) -> Path:
        if experiment not in trained:
            output = tmp_path_factory.mktemp(experiment)
            cfg = compose_config(
                output,
                [
                    f"experiment={experiment}",
                    "trainer.max_epochs=1",
                    "trainer.limit_train_batches=3",
                    "trainer.limit_val_batches=1",
                    "trainer.accelerator=cpu",
                    "metrics=none",
                    "callbacks.model_checkpoint.monitor=null",
                    "test=false",
                ],
            )
            train(cfg)
            trained[experiment] = output / "checkpoints" / "last.ckpt"
        return trained[experiment]

    return checkpoint


def evaluate_config(checkpoint: Path, *overrides: str) -> DictConfig:
    return compose_conf("evaluate", [f"ckpt_path={checkpoint}", *SMALL, *overrides])


def check_sample_quality(metrics: dict) -> None:
    for name in ("fid", "inception_score", "kid", "precision", "recall", "density", "coverage"):
        assert metrics[name] == metrics[name], f"{name} is NaN"
    assert metrics["fid"] > 0 and metrics["inception_score"] >= 1 and 0 <= metrics["precision"] <= 1
    assert metrics["density"] >= 0 and 0 <= metrics["coverage"] <= 1


@pytest.mark.parametrize("experiment", ["dcgan", "cgan", "vae", "autoencoder", "realnvp"])
def test_each_generating_family_evaluates_end_to_end(experiment: str, checkpoints) -> None:
    checkpoint = checkpoints(experiment)
    report = evaluate(evaluate_config(checkpoint))
    written = json.loads(checkpoint.with_name("last_evaluation.json").read_text())
    assert written["metrics"] == report["metrics"]
    assert checkpoint.with_name("last_samples.png").is_file()
    metrics = report["metrics"]
    check_sample_quality(metrics)
    assert metrics["mode_coverage"]["num_classes"] == 10
    assert ("class_agreement" in metrics) == (experiment == "cgan")
    if experiment == "vae":
        assert metrics["test_likelihood"]["iwae_nll_nats"] > 0
    if experiment == "autoencoder":
        assert metrics["test_likelihood"]["reconstruction_nats"] > 0
    if experiment == "realnvp":
        likelihood = metrics["test_likelihood"]
        assert likelihood["nll_nats"] == pytest.approx(likelihood["bits_per_dim"] * 784 * math.log(2), rel=1e-4)


def test_cyclegan_is_scored_per_direction(checkpoints) -> None:
    metrics = evaluate(evaluate_config(checkpoints("cyclegan_mnist_usps")))["metrics"]
    for direction in ("A_to_B", "B_to_A"):
        check_sample_quality(metrics[direction])
        assert metrics[direction]["num_translated"] == 200
    assert "mode_coverage" not in metrics


def test_second_evaluation_reads_real_features_from_the_cache(checkpoints, session_cache, monkeypatch) -> None:
    cfg = evaluate_config(checkpoints("dcgan"), "evaluate.reference_size=401")  # a key no other test uses
    cached = session_cache / "reference_features"
    assert not list(cached.glob("*-401-*"))
    first = evaluate(cfg)["metrics"]
    assert len(list(cached.glob("*-401-*/features.pt"))) == 1

    def no_real_images(*args, **kwargs):
        raise AssertionError("real images were read again")

    monkeypatch.setattr(evaluation, "dataset_images", no_real_images)
    assert evaluate(cfg)["metrics"] == first


def test_logs_to_the_runs_own_csv_logger_where_make_compare_shows_it(checkpoints, tmp_path) -> None:
    checkpoint = checkpoints("dcgan")
    metrics = evaluate(evaluate_config(checkpoint, "log_to_run=true"))["metrics"]
    logged = list((checkpoint.parents[1] / "csv").glob("version_*/metrics.csv"))
    assert any("evaluate/fid" in path.read_text() for path in logged)
    table = ["evaluate/fid", "evaluate/mode_coverage/*"]
    assert compare.main([str(checkpoint.parents[1]), "--out", str(tmp_path), "--table", *table]) == 0
    (row,) = table_after((tmp_path / "report.md").read_text(), "## Final metrics (last logged value)")
    assert list(row)[:3] == ["run", "evaluate/fid", "evaluate/mode_coverage/classes_covered"]
    assert float(row["evaluate/fid"]) == pytest.approx(metrics["fid"], rel=1e-5)
    assert "![samples](samples.png)" in (tmp_path / "report.md").read_text()
    with Image.open(tmp_path / "samples.png") as picture:
        assert picture.format == "PNG" and len(set(picture.convert("L").getdata())) > 2, "a blank samples picture"


def test_logs_to_the_same_wandb_run_offline(tmp_path) -> None:
    output = tmp_path / "run"
    overrides = ["experiment=dcgan", "logger=wandb", "trainer.max_epochs=1", "trainer.limit_train_batches=2"]
    overrides += ["trainer.limit_val_batches=1", "metrics=none", "callbacks.model_checkpoint.monitor=null"]
    overrides += ["test=false"]
    train(compose_config(output, overrides))
    evaluate(evaluate_config(output / "checkpoints" / "last.ckpt", "log_to_run=true"))
    runs = sorted((output / "wandb").glob("offline-run-*"))
    assert len(runs) == 2, runs  # training, then evaluation resuming it
    assert len({run.name.rsplit("-", 1)[1] for run in runs}) == 1, "evaluation logged to another W&B run"
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", "--summary", str(runs[1])]
    summary = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)["summary"]
    checkpoint_dir = output / "checkpoints"
    images = {"evaluate/samples": "last_samples.png", "evaluate/class_histogram": "last_class_histogram.png"}
    for key, local in images.items():
        (filename,) = summary[key]["filenames"]
        assert summary[key]["captions"][0], f"{key} has no caption"
        assert pixels(runs[1] / "files" / filename) == pixels(checkpoint_dir / local), f"W&B got another {key}"
    assert summary["evaluate/mode_coverage/classes_covered"] >= 1


def pixels(path: Path) -> bytes:
    with Image.open(path) as image:
        return image.convert("RGB").tobytes()


def grid_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_sample_grid_has_one_row_per_class_or_temperature(checkpoints) -> None:
    cgan = write_samples(evaluate_config(checkpoints("cgan"), "mode=sample", "grid_samples=30"))
    assert grid_size(cgan) == (2 + 3 * 30, 2 + 10 * 30)  # 3 per class, 10 rows of 28 px + 2 px padding
    two_temperatures = evaluate_config(checkpoints("realnvp"), "mode=sample", "grid_samples=8", "temperatures=[0.5,1]")
    flow = write_samples(two_temperatures)
    assert grid_size(flow) == (2 + 4 * 30, 2 + 2 * 30)


class RealDigits(L.LightningModule):
    """A stand-in generator that returns real MNIST test images, optionally of one class only."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images, self.num_classes = images, None

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.images[torch.randint(len(self.images), (n,), generator=generator)]


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> TorchvisionDataModule:
    datamodule = TorchvisionDataModule("mnist", root=str(DATA_ROOT), download=False)
    datamodule.setup()
    return datamodule


def test_a_generator_of_one_class_covers_one_mode_of_ten(mnist, session_cache: Path) -> None:
    classifier = classifier_feature_extractor(mnist, str(session_cache / "feature_classifiers"))
    settings = EvaluationSettings(num_samples=500, reference_size=1000, kid_subset_size=100, kid_subsets=5)
    test = mnist.test_set
    threes = test.images[test.labels == 3].float() / 255
    every_digit = test.images[:2000].float() / 255
    collapsed = generated_metrics(RealDigits(threes), mnist, classifier, classifier, settings, str(session_cache))
    diverse = generated_metrics(RealDigits(every_digit), mnist, classifier, classifier, settings, str(session_cache))
    assert collapsed["mode_coverage"]["classes_covered"] == 1
    assert diverse["mode_coverage"]["classes_covered"] == 10
    assert diverse["recall"] > 0.5 > collapsed["recall"]
    assert diverse["coverage"] > 0.5 > collapsed["coverage"]
    assert collapsed["fid"] > 5 * diverse["fid"]


# --- bad input ---


def test_missing_truncated_and_foreign_checkpoints_are_named(checkpoints, tmp_path) -> None:
    with pytest.raises(CheckpointError, match="No checkpoint at .*nothing.ckpt"):
        evaluate(evaluate_config(tmp_path / "nothing.ckpt"))
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(checkpoints("dcgan").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated.ckpt cannot be read .* truncated"):
        evaluate(evaluate_config(truncated))
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "epoch": 3}, foreign)
    with pytest.raises(CheckpointError, match="foreign.ckpt was not written by genlab"):
        evaluate(evaluate_config(foreign))


def test_a_model_that_no_longer_exists_is_named(checkpoints, tmp_path) -> None:
    checkpoint = torch.load(checkpoints("dcgan"), weights_only=True)
    checkpoint[CONFIG_KEY]["model"]["_target_"] = "lightning_modules.gan.RemovedGAN"
    renamed = tmp_path / "renamed.ckpt"
    torch.save(checkpoint, renamed)
    with pytest.raises(CheckpointError, match="renamed.ckpt: its config names the model 'lightning_modules.gan.Remo"):
        evaluate(evaluate_config(renamed))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["evaluate.num_samples=1"], "FID needs at least 2 samples but evaluate.num_samples=1"),
        (["evaluate.num_samples=20"], "KID needs at least 50 samples but evaluate.num_samples=20"),
        (["evaluate.num_samples=500"], "reference split 'train' has 400 images"),
    ],
)
def test_too_few_samples_fail_before_sampling(checkpoints, overrides: list[str], message: str) -> None:
    with pytest.raises(TooFewSamplesError, match=message):
        evaluate(evaluate_config(checkpoints("dcgan"), *overrides))


def test_inception_without_weights_is_the_training_error(checkpoints, tmp_path) -> None:
    missing = tmp_path / "inception.pth"
    with pytest.raises(InceptionUnavailableError, match=f"no file at {missing}"):
        evaluate(evaluate_config(checkpoints("dcgan"), "features=inception", f"inception_weights={missing}"))


def test_cli_prints_the_error_without_a_traceback(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "evaluate.py", f"ckpt_path={tmp_path / 'absent.ckpt'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"error: No checkpoint at {tmp_path / 'absent.ckpt'}" in result.stderr
    assert "Traceback" not in result.stderr

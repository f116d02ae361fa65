"""`make compare` on two tiny real runs: a PNG per metric, parallel coordinates, and tables that hold
exactly the numbers the CSV logs hold."""

import csv
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from genlab import compare
from genlab.run import train
from tests.helpers.config import compose_config, requires_mnist
from tests.helpers.reports import table_after

TINY = [
    "experiment=vae",
    "metrics=none",
    "test=false",
    "trainer.accelerator=cpu",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "data.batch_size=32",
]
LEARNING_RATES = ("0.001", "0.003")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_run(run_dir: Path, *overrides: str) -> Path:
    """Train one tiny run into `run_dir` and save its config where Hydra would (.hydra/config.yaml)."""
    cfg = compose_config(run_dir, [*TINY, *overrides])
    train(cfg)
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return run_dir


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list[Path]:
    runs = tmp_path_factory.mktemp("runs")
    return [tiny_run(runs / f"lr{lr}", f"model.optimizer.lr={lr}") for lr in LEARNING_RATES]


def csv_last_values(run_dir: Path) -> dict[str, float]:
    """Straight from the CSV logger's file: the last non-empty value of each column."""
    last: dict[str, float] = {}
    with open(run_dir / "csv" / "version_0" / "metrics.csv", newline="") as file:
        for row in csv.DictReader(file):
            last |= {name: float(value) for name, value in row.items() if value and name not in ("epoch", "step")}
    return last


@requires_mnist
def test_compare_writes_a_png_per_metric_and_tables_with_the_logged_numbers(two_runs, tmp_path):
    out = tmp_path / "report"
    assert compare.main([str(two_runs[0].parent / "lr*"), "--out", str(out)]) == 0  # a glob, as make passes it
    report = (out / "report.md").read_text()

    logged = [csv_last_values(run) for run in two_runs]
    curves = sorted(name for name in logged[0] if name.startswith(("train/", "val/")))
    assert "val/nelbo_nats" in curves and "train/loss" in curves
    for name in [*curves, "parallel_coordinates"]:
        picture = out / compare.metric_file_name(name)
        assert picture.read_bytes()[:8] == PNG_SIGNATURE, f"{picture} is not a PNG"
        assert f"]({picture.name})" in report

    finals = table_after(report, "## Final metrics (last logged value)")
    assert [row["run"] for row in finals] == [run.name for run in two_runs]
    for row, values in zip(finals, logged, strict=True):
        for name in (name for name in values if name.startswith(("val/", "test/"))):
            assert float(row[name]) == pytest.approx(values[name], rel=1e-5), name
    assert finals[0]["val/nelbo_nats"] != finals[1]["val/nelbo_nats"]

    differing = table_after(report, "## Hyperparameters that differ")
    assert [row["model.optimizer.lr"] for row in differing] == [str(float(lr)) for lr in LEARNING_RATES]
    assert not any(key.startswith("paths.") for key in differing[0]), "output paths differ but are no choice"


def test_runs_without_logs_are_named_in_the_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert compare.main([str(tmp_path / "empty")]) == 2
    assert "No runs under" in capsys.readouterr().err


def test_differing_hyperparameters_ignore_paths_and_see_missing_keys():
    runs = [
        compare.Run(Path("a"), {"model.lr": 0.1, "paths.output_dir": "a", "seed": 1}),
        compare.Run(Path("b"), {"model.lr": 0.2, "paths.output_dir": "b", "seed": 1, "model.beta": 4.0}),
    ]
    assert compare.differing_hyperparameters(runs) == ["model.beta", "model.lr"]


def test_labels_are_folder_names_as_wandb_names_runs_or_paths_where_names_repeat():
    runs = [compare.Run(Path("/o/dcgan/multirun/t/0"), {}), compare.Run(Path("/o/dcgan/multirun/t/1"), {})]
    assert compare.run_labels(runs) == ["0", "1"]
    runs = [compare.Run(Path("/o/dcgan/dcgan-mnist-2026-11-30_04-03-54"), {}), compare.Run(Path("/o/vae/v"), {})]
    assert compare.run_labels(runs) == ["dcgan-mnist-2026-11-30_04-03-54", "v"]
    runs = [compare.Run(Path("/o/dcgan/multirun/t1/0"), {}), compare.Run(Path("/o/dcgan/multirun/t2/0"), {})]
    assert compare.run_labels(runs) == ["t1/0", "t2/0"]


def fake_run(folder: Path, config: str, metrics: str | None) -> Path:
    """A run folder as train.py leaves it: Hydra's unresolved config and, unless it failed first, a CSV log."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(config)
    if metrics is not None:
        (folder / "csv" / "version_0").mkdir(parents=True)
        (folder / "csv" / "version_0" / "metrics.csv").write_text(metrics)
    return folder


CONFIG = """paths:
  output_dir: ${hydra:runtime.output_dir}
model:
  latent_dim: LATENT
  decoder:
    latent_dim: ${model.latent_dim}
callbacks:
  model_checkpoint:
    dirpath: ${paths.output_dir}/checkpoints
"""


def test_runs_without_metrics_are_left_out_and_counted_and_values_are_resolved(tmp_path, capsys):
    fake_run(tmp_path / "a", CONFIG.replace("LATENT", "32"), "step,val/loss\n1,2.5\n")
    fake_run(tmp_path / "b", CONFIG.replace("LATENT", "64"), "step,val/loss\n1,1.5\n")
    fake_run(tmp_path / "failed", CONFIG.replace("LATENT", "16"), None)
    assert compare.main([str(tmp_path / "*"), "--out", str(tmp_path / "report")]) == 0
    assert "Left out 1 run(s) that logged no metric" in capsys.readouterr().out
    report = (tmp_path / "report" / "report.md").read_text()
    differing = table_after(report, "## Hyperparameters that differ")
    assert [(row["run"], row["model.decoder.latent_dim"]) for row in differing] == [("a", "32"), ("b", "64")]
    assert "${" not in report and "dirpath" not in report
    assert [row["run"] for row in table_after(report, "## Final metrics (last logged value)")] == ["a", "b"]


def test_no_run_with_a_metric_is_an_error(tmp_path, capsys):
    fake_run(tmp_path / "failed", CONFIG.replace("LATENT", "16"), None)
    assert compare.main([str(tmp_path / "failed")]) == 2
    assert "logged a metric" in capsys.readouterr().err


def test_parallel_coordinates_leave_out_runs_that_diverged_or_failed(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    runs = [
        compare.Run(Path(f"r{index}"), {"model.lr": lr, "model.loss": loss}, {"val/fid": points})
        for index, (lr, loss, points) in enumerate(
            [(1e-4, "hinge", [(1, 80.0)]), (1e-3, "non_saturating", [(1, 60.0)]), (1e-2, "hinge", [(1, float("nan"))])]
        )
    ]
    runs.append(compare.Run(Path("failed"), {"model.lr": 0.1, "model.loss": "hinge"}))  # logged nothing
    assert [run.path.name for run in compare.runs_with_a_final(runs, "val/fid")] == ["r0", "r1"]
    compare.plot_parallel_coordinates(runs, ["model.lr", "model.loss"], "val/fid", tmp_path / "pc.png")
    assert (tmp_path / "pc.png").read_bytes()[:8] == PNG_SIGNATURE


def test_table_holds_the_chosen_columns_in_order_and_names_a_pattern_nothing_matched(tmp_path, capsys):
    metrics = "step,val/loss,test/bits_per_dim,evaluate/fid\n1,2.5,1.5,80\n"
    fake_run(tmp_path / "a", CONFIG.replace("LATENT", "32"), metrics)
    out = tmp_path / "report"
    assert compare.main([str(tmp_path / "a"), "--out", str(out), "--table", "evaluate/*", "test/bits_per_dim"]) == 0
    (row,) = table_after((out / "report.md").read_text(), "## Final metrics (last logged value)")
    assert row == {"run": "a", "evaluate/fid": "80", "test/bits_per_dim": "1.5"}
    assert compare.main([str(tmp_path / "a"), "--out", str(out), "--table", "evaluate/kid*"]) == 2
    assert "no run logged a metric matching evaluate/kid*" in capsys.readouterr().err

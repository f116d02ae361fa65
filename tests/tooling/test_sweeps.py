"""Sweep files are valid W&B sweeps over real config keys; the local Optuna sweep searches the same space,
runs each trial as its own finished W&B run and survives a failing trial; `make sweep` fails fast offline."""

import math
import os
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from omegaconf import OmegaConf
from optuna.distributions import (
    CategoricalDistribution,
    IntUniformDistribution,
    LogUniformDistribution,
    UniformDistribution,
)

from genlab import sweeps
from genlab.compare import find_runs, load_run
from genlab.loggers import run_group, run_tags
from tests.helpers.config import CONF, ROOT, compose_config, requires_mnist

MODELS = sorted(path.stem for path in (CONF / "sweep").glob("*.yaml"))
MISSING = object()


def sweep_of(model: str) -> dict:
    return sweeps.load_sweep(sweeps.sweep_path(model))


def draw(space: dict, rng: random.Random, corner: str) -> object:
    """A value from a W&B search space: its lowest, highest or a random one."""
    kind = sweeps.distribution_of(space)
    if kind == "constant":
        return space["value"]
    if kind == "categorical":
        values = space["values"]
        return {"low": values[0], "high": values[-1]}.get(corner, rng.choice(values))
    low, high = space["min"], space["max"]
    if corner != "random":
        return low if corner == "low" else high
    if kind == "int_uniform":
        return rng.randint(low, high)
    if kind == "log_uniform_values":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)


# --- the files themselves ---


def test_every_experiment_has_a_sweep_file():
    experiments = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))
    assert experiments == MODELS


@pytest.mark.parametrize("model", MODELS)
def test_sweep_file_is_a_valid_wandb_sweep_of_its_experiment(model):
    sweep = sweep_of(model)  # raises with every problem listed
    assert sweep["program"] == "train.py" and (ROOT / sweep["program"]).is_file()
    assert sweeps.experiment_of(sweep) == model
    assert sweep["command"][-1] == "${args_no_hyphens}"
    if sweep["method"] != "grid":  # a grid charts every point on purpose (see beta_vae.yaml)
        assert sweep["early_terminate"]["type"] == "hyperband"


@pytest.mark.parametrize("model", MODELS)
def test_sweep_metric_is_the_best_value_of_what_the_experiment_checkpoints_on(model):
    # ModelCheckpoint fails a run whose monitored metric is never logged, so this is a metric the
    # model really logs; the sweep ranks runs by its best value, the one the kept checkpoint has.
    cfg = compose_config(Path("unused"), [f"experiment={model}"])
    monitor = cfg.callbacks.model_checkpoint.monitor
    assert sweep_of(model)["metric"]["name"] == f"{monitor}_best"
    assert cfg.callbacks.best_metric.monitor == monitor
    assert sweep_of(model)["metric"]["goal"] == {"min": "minimize", "max": "maximize"}[cfg.callbacks.best_metric.mode]


@pytest.mark.parametrize("model", MODELS)
def test_sweep_parameters_are_keys_of_the_composed_config(model):
    cfg = compose_config(Path("unused"), [f"experiment={model}"])
    parameters = sweep_of(model)["parameters"]
    unknown = [name for name in parameters if OmegaConf.select(cfg, name, default=MISSING) is MISSING]
    assert not unknown, f"conf/sweep/{model}.yaml sweeps keys the config does not have: {unknown}"


@pytest.mark.parametrize("model", MODELS)
def test_values_drawn_from_the_space_compose_and_build_the_model(model, tmp_path):
    rng = random.Random(0)
    parameters = sweep_of(model)["parameters"]
    for corner in ("low", "high", "random"):
        values = {name: draw(space, rng, corner) for name, space in parameters.items()}
        overrides = [f"{name}={sweeps.hydra_value(value)}" for name, value in values.items()]
        # CycleGAN builds its FID feature network at start-up (Inception weights, which this machine
        # lacks, or a classifier trained for half a minute); the swept networks do not depend on it.
        offline = ["model.feature_extractor=null"] if model.startswith("cyclegan") else []
        cfg = compose_config(tmp_path, [f"experiment={model}", *overrides, *offline])
        for name, value in values.items():
            assert OmegaConf.select(cfg, name) == pytest.approx(value), f"{name} did not reach the config"
        instantiate(cfg.model)  # networks and optimizers validate their arguments here


def test_validator_rejects_what_wandb_rejects():
    good = sweep_of("dcgan")
    broken = {
        "method": {**good, "method": "annealing"},
        "unknown top-level key": {**good, "parameter": {}},
        "${args_no_hyphens}": {**good, "command": ["${env}", "${interpreter}", "${program}", "experiment=dcgan"]},
        "min_iter": {**good, "early_terminate": {"type": "hyperband", "eta": 3}},
        "eta": {**good, "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 1}},
        "unknown distribution": {**good, "parameters": {"model.loss": {"distribution": "zipf", "values": [1]}}},
        "needs min > 0": {
            **good,
            "parameters": {"model.optimizer_g.lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}},
        },
        "parameter name": {**good, "parameters": {"model lr": {"values": [1]}}},
        "metric": {key: value for key, value in good.items() if key != "metric"},
    }
    assert sweeps.sweep_problems(good) == []
    for expected, sweep in broken.items():
        problems = sweeps.sweep_problems(sweep)
        assert any(expected in problem for problem in problems), f"{expected!r} not in {problems}"


# --- one space, two sweepers ---


def expected_distribution(space: dict):
    kind = sweeps.distribution_of(space)
    if kind == "categorical":
        return CategoricalDistribution(tuple(space["values"]))
    if kind == "int_uniform":
        return IntUniformDistribution(space["min"], space["max"])
    if kind == "log_uniform_values":
        return LogUniformDistribution(space["min"], space["max"])
    assert kind == "uniform", f"add {kind} to this test"
    return UniformDistribution(space["min"], space["max"])


@pytest.mark.parametrize("model", MODELS)
def test_local_optuna_sweep_searches_the_wandb_space(model):
    sweep = sweep_of(model)
    overrides = sweeps.optuna_overrides(sweep)
    distributions, fixed = create_params_from_overrides(overrides)  # exactly what the Optuna sweeper does
    assert fixed["optimized_metric"] == sweep["metric"]["name"]
    assert fixed["hydra.sweeper.direction"] == sweep["metric"]["goal"]
    assert fixed["hydra/sweeper/sampler"] == sweeps.OPTUNA_SAMPLERS[sweep["method"]]
    assert set(distributions) == set(sweep["parameters"])
    for name, space in sweep["parameters"].items():
        assert distributions[name] == expected_distribution(space), name


def test_hydra_values_read_back_as_written():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    values = [1, 0.0002, 1e-05, True, False, "hinge", "a b", "it's", [0.5, 0.999], None]
    parser = OverridesParser.create()
    for value in values:
        override = parser.parse_override(f"key={sweeps.hydra_value(value)}")
        assert override.value() == value


def test_a_trial_without_a_finite_metric_fails_instead_of_reporting_it(tmp_path):
    from train import optimized_value

    cfg = compose_config(tmp_path, ["experiment=vae", "optimized_metric=val/nelbo_nats"])
    assert optimized_value(cfg, {"val/nelbo_nats": 95.5}) == 95.5
    with pytest.raises(KeyError, match="was not logged"):
        optimized_value(cfg, {"val/kl_nats": 20.0})
    with pytest.raises(ValueError, match="is nan"):  # Optuna's tell() would crash the sweeper on a NaN
        optimized_value(cfg, {"val/nelbo_nats": float("nan")})


@pytest.mark.parametrize("in_a_sweep", [True, False])
def test_a_nan_loss_fails_only_its_trial_in_a_sweep_and_exits_cleanly_alone(monkeypatch, tmp_path, in_a_sweep):
    import train as entry_point
    from lightning_modules.training.guards import NonFiniteLossError

    def diverge(cfg):
        raise NonFiniteLossError("Training stopped: GAN loss is nan at step 7")

    monkeypatch.setattr(entry_point, "train", diverge)
    monkeypatch.setattr(entry_point, "in_multirun", lambda: in_a_sweep)
    cfg = compose_config(tmp_path, ["experiment=dcgan"])
    # sys.exit in a sweep would end every remaining trial (SystemExit passes Hydra's job runner by);
    # the exception itself lets the sweeper record this trial as failed and go on.
    expected = NonFiniteLossError if in_a_sweep else SystemExit
    with pytest.raises(expected):
        entry_point.main.__wrapped__(cfg)


# --- W&B sweeps need the server: fail at once without it ---


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc
    import wandb

    def refuse(*args, **kwargs):
        raise AssertionError("wandb.sweep must not be called without the server")

    monkeypatch.setattr(wandb, "sweep", refuse)


@pytest.mark.parametrize(
    "environment",
    [{}, {"WANDB_MODE": "offline"}, {"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"}],
    ids=["no-credentials", "offline-mode", "unreachable-server"],
)
def test_wandb_sweep_fails_at_once_pointing_to_the_local_sweep(no_credentials, monkeypatch, capsys, environment):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    start = time.monotonic()
    assert sweeps.main(["wandb", "dcgan", "--count", "3"]) == 2
    assert time.monotonic() - start < 10
    message = capsys.readouterr().err
    assert "needs the W&B server" in message and "make sweep-local MODEL=dcgan" in message


def test_wandb_sweep_creates_the_sweep_and_runs_an_agent_with_this_python(monkeypatch):
    import wandb

    created, called = [], []
    monkeypatch.setattr(sweeps, "wandb_unavailable_reason", lambda: None)  # as if logged in and online
    monkeypatch.setattr(wandb, "sweep", lambda sweep, project, entity: created.append((sweep, project)) or "ab12cd34")
    monkeypatch.setattr(sweeps.subprocess, "call", lambda command, cwd, env: called.append((command, cwd, env)) or 0)
    assert sweeps.main(["wandb", "dcgan", "--count", "3", "--entity", "lab"]) == 0
    ((sweep, project),) = created
    assert project == "genlab" and sweep == sweep_of("dcgan")
    ((command, cwd, env),) = called
    assert command == [sys.executable, "-m", "wandb", "agent", "--count", "3", "lab/genlab/ab12cd34"]
    assert cwd == ROOT  # where the sweep's `program: train.py` is
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)  # ${interpreter} is `python`


def test_unknown_model_names_the_available_sweeps(capsys):
    assert sweeps.main(["local", "dcgna"]) == 2
    assert "Available: autoencoder, beta_vae" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("sweep MODEL=dcgan COUNT=3", "-m genlab.sweeps wandb dcgan --count 3"),
        ("sweep-local MODEL=vae TRIALS=5 ARGS=debug=fdr", "-m genlab.sweeps local vae --trials 5 debug=fdr"),
        ("compare RUNS=outputs/x OUT=report", "-m genlab.compare outputs/x --out report"),
    ],
)
def test_make_targets_call_the_modules(target, expected):
    # A dry run (-n): prints the recipes without installing or running anything.
    result = subprocess.run(["make", "-n", *target.split()], cwd=ROOT, capture_output=True, text=True, check=True)
    assert expected in result.stdout


# --- tags and groups that dashboards compare by ---


def test_runs_are_tagged_with_commit_and_sweep_and_grouped_by_sweep():
    assert run_tags(["dcgan", "mnist"], None, "0123456789abcdef") == ["dcgan", "mnist", "commit:01234567"]
    tags = run_tags(["dcgan", "mnist"], "dcgan-optuna-20260101-120000", None)
    assert tags == ["dcgan", "mnist", "commit:unknown", "sweep:dcgan-optuna-20260101-120000"]
    assert run_group("dcgan", None) == "dcgan"
    assert run_group("dcgan", "2026-01-01_12-00-00") == "2026-01-01_12-00-00"  # a local sweep's folder
    assert run_group("dcgan", "x1y2z3") == "x1y2z3"  # a W&B sweep id


def test_sweep_id_comes_from_the_wandb_agent(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_SWEEP_ID", "x1y2z3")
    assert compose_config(tmp_path, ["experiment=dcgan"]).sweep_id == "x1y2z3"
    monkeypatch.delenv("WANDB_SWEEP_ID")
    assert compose_config(tmp_path, ["experiment=dcgan"]).sweep_id is None


# --- clusters: configs that cannot run here must at least compose ---


def compose_with_hydra(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def test_slurm_launcher_and_multi_node_ddp_compose():
    cfg = compose_with_hydra(
        ["experiment=dcgan", "hparams_search=optuna", "optimized_metric=val/fid", "hydra/launcher=slurm"]
        + ["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2", "hydra.launcher.partition=gpu"]
    )
    launcher = cfg.hydra.launcher
    assert get_class(launcher._target_).__name__ == "SlurmLauncher"  # the plugin is installed and importable
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.partition == "gpu"
    assert cfg.trainer.num_nodes == 2 and cfg.trainer.strategy._target_.endswith("DDPStrategy")
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.sweeper.max_failure_rate == 1.0


# --- a real local sweep, end to end ---


def wandb_records(path: Path):
    """The protobuf records of a .wandb file (W&B's LevelDB-style log: 7-byte header, then 32 KiB
    blocks of chunks, each with a 7-byte header: CRC32C, length, type full/first/middle/last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B data file"
    position, pending = 7, b""
    while position + 7 <= len(data):
        block_left = 32768 - position % 32768
        if block_left < 7:
            position += block_left
            continue
        length, kind = struct.unpack("<HB", data[position + 4 : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # full or last chunk: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def last_csv_value(run_dir: Path, metric: str) -> float:
    return load_run(run_dir).final(metric)


@requires_mnist
def test_local_sweep_runs_each_trial_as_its_own_finished_run_and_survives_a_failing_trial(tmp_path):
    command = [sys.executable, "-m", "genlab.sweeps", "local", "vae", "--trials", "2"]
    command += [
        f"paths.log_dir={tmp_path}",
        "logger=wandb",
        "metrics=none",
        "test=false",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=2",
        "trainer.log_every_n_steps=1",
        "trainer.enable_model_summary=false",
        "callbacks.progress_bar=null",
        # Trial 0 gets batch size 0, refused at start-up before its W&B run starts; trial 1 gets
        # batch size 1 and succeeds. This pins the swept data.batch_size.
        "data.batch_size=${hydra:job.num}",
    ]
    environment = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    (sweep_dir,) = (tmp_path / "vae" / "multirun").iterdir()
    trials = sorted(path for path in sweep_dir.iterdir() if path.is_dir())
    assert [trial.name for trial in trials] == ["0", "1"]
    assert all((trial / ".hydra" / "config.yaml").is_file() for trial in trials)
    assert "data.batch_size=0 must be at least 1" in (trials[0] / "train.log").read_text()  # kept with its trial
    assert not list(trials[0].glob("wandb/offline-run-*")), "a trial refused at start-up starts no W&B run"

    (data_file,) = trials[1].glob("wandb/offline-run-*/run-*.wandb")  # exactly one W&B run for the trial
    records = list(wandb_records(data_file))
    (run,) = [record.run for record in records if record.HasField("run")]
    (exit_record,) = [record.exit for record in records if record.HasField("exit")]  # finished, once
    assert exit_record.exit_code == 0
    study = yaml.safe_load((trials[1] / ".hydra" / "config.yaml").read_text())["sweep_id"]
    assert study == sweep_dir.name  # the sweep's start time names its folder, study and W&B group
    assert run.run_group == study and run.display_name == trials[1].name
    assert {"vae", "mnist", f"sweep:{study}"} <= set(run.tags)
    assert any(tag.startswith("commit:") for tag in run.tags)

    # The sweeper recorded trial 1's value, the very number its CSV log holds.
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(last_csv_value(trials[1], "val/nelbo_nats"), rel=1e-6)
    assert find_runs([str(sweep_dir)]) == trials  # make compare takes the multirun folder as its trials

"""Hyperparameter sweeps from one file per model, conf/sweep/<model>.yaml, in W&B's sweep format.

`python -m genlab.sweeps wandb dcgan --count 20` (`make sweep`) creates the W&B sweep and
runs an agent; `python -m genlab.sweeps local dcgan --trials 20` (`make sweep-local`) runs
the same search space as a Hydra multirun with the Optuna sweeper, without any service. The local
sweep translates the W&B file, so there is one source of truth for each model's space.
"""

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from genlab.loggers import wandb_mode

ROOT = Path(__file__).resolve().parents[1]
SWEEP_DIR = ROOT / "conf" / "sweep"

# The structure `wandb sweep` accepts (the JSON schema of W&B's sweeps engine, wandb/sweeps
# src/sweeps/config/schema.json), written out as the keys each part may and must hold.
TOP_LEVEL_KEYS = {
    "program", "method", "metric", "parameters", "early_terminate", "command", "name", "description",
    "project", "entity", "run_cap", "controller", "apiVersion", "kind", "job", "image_uri",
}  # fmt: skip
METHODS = ("bayes", "random", "grid", "custom")
METRIC_KEYS = {"name", "goal", "target", "impute", "impute_while_running"}
GOALS = ("minimize", "maximize")
HYPERBAND_KEYS = {"type", "min_iter", "max_iter", "s", "eta", "strict"}
# distribution -> (required keys, optional keys) besides `distribution` itself.
DISTRIBUTIONS: dict[str, tuple[set[str], set[str]]] = {
    "constant": ({"value"}, set()),
    "categorical": ({"values"}, set()),
    "categorical_w_probabilities": ({"values", "probabilities"}, set()),
    "int_uniform": ({"min", "max"}, set()),
    "uniform": ({"min", "max"}, set()),
    "q_uniform": ({"min", "max"}, {"q"}),
    "log_uniform": ({"min", "max"}, set()),
    "log_uniform_values": ({"min", "max"}, set()),
    "q_log_uniform": ({"min", "max"}, {"q"}),
    "q_log_uniform_values": ({"min", "max"}, {"q"}),
    "inv_log_uniform": ({"min", "max"}, set()),
    "inv_log_uniform_values": ({"min", "max"}, set()),
    "normal": (set(), {"mu", "sigma"}),
    "q_normal": (set(), {"mu", "sigma", "q"}),
    "log_normal": (set(), {"mu", "sigma"}),
    "q_log_normal": (set(), {"mu", "sigma", "q"}),
    "beta": (set(), {"a", "b"}),
    "q_beta": (set(), {"a", "b", "q"}),
}
PARAMETER_NAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# W&B search method -> the Optuna sampler of hydra-optuna-sweeper that searches the same way.
OPTUNA_SAMPLERS = {"bayes": "tpe", "random": "random", "grid": "grid"}


class SweepConfigError(ValueError):
    """A sweep file that W&B or the local sweep would reject."""


# --- reading and checking sweep files ---


def available_models() -> list[str]:
    return sorted(path.stem for path in SWEEP_DIR.glob("*.yaml"))


def sweep_path(model: str) -> Path:
    path = SWEEP_DIR / f"{model}.yaml"
    if not path.is_file():
        raise SweepConfigError(f"No sweep file for '{model}' ({path}). Available: {', '.join(available_models())}")
    return path


def load_sweep(path: str | Path) -> dict[str, Any]:
    """The sweep definition in `path`, checked against the structure W&B accepts."""
    try:
        with open(path) as file:
            sweep = yaml.safe_load(file)
    except (OSError, yaml.YAMLError) as error:
        raise SweepConfigError(f"cannot read the sweep file {path}: {error}") from error
    problems = sweep_problems(sweep)
    if problems:
        raise SweepConfigError(f"{path} is not a valid W&B sweep:\n  " + "\n  ".join(problems))
    return sweep


def sweep_problems(sweep: Any) -> list[str]:
    """Everything in `sweep` that `wandb sweep` would reject, plus what Hydra needs (empty when valid)."""
    if not isinstance(sweep, dict):
        return [f"a sweep is a mapping, got {type(sweep).__name__}"]
    problems = [f"unknown top-level key '{key}'" for key in sweep if key not in TOP_LEVEL_KEYS]
    if sweep.get("method") not in METHODS:
        problems.append(f"method must be one of {', '.join(METHODS)}, got {sweep.get('method')!r}")
    problems += metric_problems(sweep.get("metric"))
    if "early_terminate" in sweep:
        problems += hyperband_problems(sweep["early_terminate"])
    problems += parameters_problems(sweep.get("parameters"))
    problems += command_problems(sweep.get("command"))
    return problems


def metric_problems(metric: Any) -> list[str]:
    # W&B allows a sweep without a metric (random, grid), but ours always optimise something.
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
        return ["metric must be a mapping with a name, e.g. {name: val/fid, goal: minimize}"]
    problems = [f"unknown metric key '{key}'" for key in metric if key not in METRIC_KEYS]
    if metric.get("goal", "minimize") not in GOALS:
        problems.append(f"metric.goal must be minimize or maximize, got {metric['goal']!r}")
    return problems


def hyperband_problems(stopping: Any) -> list[str]:
    if not isinstance(stopping, dict) or stopping.get("type") != "hyperband":
        return ["early_terminate must be {type: hyperband, ...}"]
    problems = [f"unknown early_terminate key '{key}'" for key in stopping if key not in HYPERBAND_KEYS]
    if "min_iter" not in stopping and not {"max_iter", "s"} <= stopping.keys():
        problems.append("early_terminate needs min_iter, or max_iter and s")
    if "min_iter" in stopping and not (isinstance(stopping["min_iter"], int) and stopping["min_iter"] >= 1):
        problems.append(f"early_terminate.min_iter must be an integer >= 1, got {stopping['min_iter']!r}")
    if "eta" in stopping and not (is_number(stopping["eta"]) and stopping["eta"] > 1):
        problems.append(f"early_terminate.eta must be a number > 1, got {stopping['eta']!r}")
    return problems


def parameters_problems(parameters: Any) -> list[str]:
    if not isinstance(parameters, dict) or not parameters:
        return ["parameters must be a non-empty mapping of config keys to search spaces"]
    problems = []
    for name, space in parameters.items():
        if not (isinstance(name, str) and name and set(name) <= PARAMETER_NAME_CHARACTERS and not name[0].isdigit()):
            problems.append(f"parameter name {name!r} must be a dotted config key (letters, digits, _ . -)")
        problems += [f"parameters.{name}: {problem}" for problem in space_problems(space)]
    return problems


def distribution_of(space: dict[str, Any]) -> str:
    """W&B's rule: an explicit distribution, else constant for `value`, categorical for `values`,
    int_uniform when min and max are integers, uniform otherwise."""
    if "distribution" in space:
        return space["distribution"]
    if "value" in space:
        return "constant"
    if "values" in space:
        return "categorical"
    if isinstance(space.get("min"), int) and isinstance(space.get("max"), int):
        return "int_uniform"
    return "uniform"


def space_problems(space: Any) -> list[str]:
    if not isinstance(space, dict):
        return [f"a search space is a mapping (value, values or distribution), got {space!r}"]
    if "parameters" in space:
        return ["nested parameter groups cannot be Hydra overrides; name the dotted key instead"]
    distribution = distribution_of(space)
    if distribution not in DISTRIBUTIONS:
        return [f"unknown distribution {distribution!r}. Available: {', '.join(DISTRIBUTIONS)}"]
    required, optional = DISTRIBUTIONS[distribution]
    problems = [f"{distribution} needs '{key}'" for key in sorted(required - space.keys())]
    problems += [
        f"'{key}' does not belong to a {distribution} space"
        for key in space
        if key not in required | optional | {"distribution"}
    ]
    if problems:
        return problems
    if "values" in space and not (isinstance(space["values"], list) and space["values"]):
        return ["values must be a non-empty list"]
    if {"min", "max"} <= space.keys():
        return range_problems(distribution, space["min"], space["max"])
    return []


def range_problems(distribution: str, low: Any, high: Any) -> list[str]:
    if distribution == "int_uniform" and not (isinstance(low, int) and isinstance(high, int)):
        return [f"int_uniform needs integer min and max, got {low!r} and {high!r}"]
    if not (is_number(low) and is_number(high)):
        return [f"min and max must be numbers, got {low!r} and {high!r}"]
    if low >= high:
        return [f"min must be below max, got {low} and {high}"]
    if distribution.endswith("_values") and low <= 0:
        return [f"{distribution} needs min > 0, got {low}"]
    return []


def command_problems(command: Any) -> list[str]:
    # W&B only needs a list; Hydra needs the parameters as `key=value`, which ${args_no_hyphens} writes
    # (the default ${args} writes `--key=value`, which Hydra rejects: wandb issues 1427, 4686).
    if not isinstance(command, list) or not all(isinstance(part, str) for part in command):
        return ["command must be a list of strings"]
    problems = []
    if "${args_no_hyphens}" not in command:
        problems.append("command must pass the parameters with ${args_no_hyphens} so they reach Hydra")
    if not any(part.startswith("experiment=") for part in command):
        problems.append("command must select the experiment, e.g. experiment=dcgan")
    return problems


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def experiment_of(sweep: dict[str, Any]) -> str:
    """The experiment the sweep's command selects."""
    return next(part.split("=", 1)[1] for part in sweep["command"] if part.startswith("experiment="))


# --- the local sweep: the same space as Hydra sweep overrides for the Optuna sweeper ---


def hydra_value(value: Any) -> str:
    """`value` as Hydra's override grammar reads it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if is_number(value):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(item) for item in value) + "]"
    text = str(value)
    plain = text and all(character.isalnum() or character in "_-./" for character in text)
    return text if plain else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def optuna_override(name: str, space: dict[str, Any]) -> str:
    """One W&B search space as the Hydra sweep override hydra-optuna-sweeper turns into the same distribution."""
    distribution = distribution_of(space)
    if distribution == "constant":
        return f"{name}={hydra_value(space['value'])}"
    if distribution == "categorical":
        if any(value is None for value in space["values"]):
            raise SweepConfigError(f"{name}: Hydra's choice() cannot hold null; use a string such as 'none'")
        return f"{name}=choice({','.join(hydra_value(value) for value in space['values'])})"
    low, high = space["min"], space["max"]
    if distribution == "int_uniform":
        return f"{name}=int(interval({low},{high}))"  # both ends included, as in W&B
    if distribution == "uniform":
        return f"{name}=interval({float(low)!r},{float(high)!r})"
    if distribution == "log_uniform_values":
        return f"{name}=tag(log,interval({float(low)!r},{float(high)!r}))"
    if distribution == "log_uniform":  # W&B's min and max are natural logs here
        return f"{name}=tag(log,interval({math.exp(low)!r},{math.exp(high)!r}))"
    raise SweepConfigError(
        f"{name}: the local Optuna sweep has no equivalent of W&B's {distribution} distribution; "
        "use values, uniform, int_uniform or log_uniform_values"
    )


def optuna_overrides(sweep: dict[str, Any]) -> list[str]:
    """The sweep's search space, metric and direction as overrides of conf/hparams_search/optuna.yaml."""
    method = sweep["method"]
    if method not in OPTUNA_SAMPLERS:
        raise SweepConfigError(f"method {method!r} has no Optuna sampler here. Use one of {', '.join(OPTUNA_SAMPLERS)}")
    metric = sweep["metric"]
    sampler = OPTUNA_SAMPLERS[method]
    seeded = [] if sampler == "grid" else ["hydra.sweeper.sampler.seed=${seed}"]  # the grid has no randomness
    return [
        f"optimized_metric={hydra_value(metric['name'])}",
        f"hydra.sweeper.direction={metric.get('goal', 'minimize')}",
        f"hydra/sweeper/sampler={sampler}",
        *seeded,
        *(optuna_override(name, space) for name, space in sweep["parameters"].items()),
    ]


def local_sweep_command(
    sweep: dict[str, Any], trials: int, study_name: str, overrides: list[str], python: str = sys.executable
) -> list[str]:
    """`python train.py` running the sweep's space as `trials` Optuna trials; later overrides win."""
    if trials < 1:
        raise SweepConfigError(f"TRIALS must be at least 1, got {trials}")
    return [
        python,
        str(ROOT / "train.py"),
        "--multirun",
        f"experiment={experiment_of(sweep)}",
        "hparams_search=optuna",
        f"hydra.sweeper.n_trials={trials}",
        f"sweep_id={study_name}",  # conf/hparams_search/optuna.yaml names the study and the folder after it
        *optuna_overrides(sweep),
        *overrides,
    ]


def run_local_sweep(sweep_file: Path, trials: int, overrides: list[str]) -> int:
    sweep = load_sweep(sweep_file)
    # The start time names the study, the sweep's folder (outputs/<model>/multirun/<time>) and its W&B group.
    study_name = time.strftime("%Y-%m-%d_%H-%M-%S")
    command = local_sweep_command(sweep, trials, study_name, overrides)
    print(f"Local Optuna sweep '{study_name}' of {sweep_file.name}: {trials} trials", flush=True)
    return subprocess.call(command, cwd=ROOT)


# --- the W&B sweep ---


def wandb_unavailable_reason() -> str | None:
    """Why a W&B sweep cannot run here (None when it can): W&B sweeps need the server, offline runs do not."""
    mode, reason = wandb_mode()  # credentials and a 3-second reachability check; never prompts
    return None if mode == "online" else reason


def run_wandb_sweep(sweep_file: Path, count: int | None, project: str, entity: str | None) -> int:
    sweep = load_sweep(sweep_file)
    model = experiment_of(sweep)
    reason = wandb_unavailable_reason()
    if reason is not None:
        print(
            f"error: a W&B sweep needs the W&B server, and here: {reason}.\n"
            f"Run the same search space locally with Optuna instead:  make sweep-local MODEL={model} TRIALS=20",
            file=sys.stderr,
        )
        return 2
    import wandb

    sweep_id = wandb.sweep(sweep=sweep, project=project, entity=entity)
    entity = entity or wandb.Api().default_entity
    agent = [sys.executable, "-m", "wandb", "agent", f"{entity}/{project}/{sweep_id}"]
    if count is not None:
        agent[4:4] = ["--count", str(count)]
    # The sweep's command runs `python` from PATH: make it this environment's.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.call(agent, cwd=ROOT, env=env)


# --- command line ---


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m genlab.sweeps", description=__doc__.splitlines()[0])
    where = parser.add_subparsers(dest="where", required=True)
    on_wandb = where.add_parser("wandb", help="create the W&B sweep of MODEL and run an agent")
    on_wandb.add_argument("model")
    on_wandb.add_argument("--count", type=int, default=None, help="runs this agent starts (default: until stopped)")
    on_wandb.add_argument("--project", default="genlab")
    on_wandb.add_argument("--entity", default=None)
    local = where.add_parser("local", help="the same space as a Hydra multirun with Optuna")
    local.add_argument("model")
    local.add_argument("--trials", type=int, default=20)
    for sub in (on_wandb, local):
        sub.add_argument("--sweep-file", type=Path, default=None, help="instead of conf/sweep/MODEL.yaml")
    # Hydra overrides may come anywhere after MODEL (`local dcgan --trials 2 debug=fdr`); a key=value
    # pins a swept key.
    arguments, overrides = parser.parse_known_args(argv)
    unknown = [item for item in overrides if "=" not in item]
    if unknown or (overrides and arguments.where != "local"):
        parser.error(f"unrecognized arguments: {' '.join(unknown or overrides)} (Hydra overrides are key=value)")
    arguments.overrides = overrides
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        sweep_file = arguments.sweep_file or sweep_path(arguments.model)
        if arguments.where == "wandb":
            return run_wandb_sweep(sweep_file, arguments.count, arguments.project, arguments.entity)
        return run_local_sweep(sweep_file, arguments.trials, arguments.overrides)
    except SweepConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

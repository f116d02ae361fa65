"""Compare finished runs without any service: curves, a table of results, parallel coordinates.

`python -m genlab.compare outputs/dcgan/2026-* --out outputs/compare` (`make compare RUNS=...`)
reads each run folder's `csv/version_*/metrics.csv` and `.hydra/config.yaml` and writes into `--out`:
one PNG per key metric with the runs' curves overlaid, `samples.png` (the sample grids `make evaluate`
wrote, side by side), `parallel_coordinates.png` (the differing
hyperparameters against the final value of the runs' common metric), and `report.md` with a table of
the hyperparameters that differ and one of the final metrics: val/, test/ and the evaluate/ numbers
that `make evaluate ... ARGS='log_to_run=true'` adds to a run (`--table` picks the columns). A multirun
folder counts as its trials.
"""

import argparse
import csv
import fnmatch
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

from omegaconf import Container, DictConfig, OmegaConf

# Keys that differ between any two runs without being a choice anybody made.
IGNORED_PREFIXES = ("paths.", "hydra.")
CURVE_PREFIXES = ("train/", "val/")  # metrics logged along training: one picture each
# Metrics whose last value is a result: the table (evaluate/: `make evaluate ... log_to_run=true`).
FINAL_PREFIXES = ("val/", "test/", "evaluate/")


@dataclass
class Run:
    """One run folder: its flattened config and every metric's (step, value) history."""

    path: Path
    config: dict[str, Any]
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def final(self, metric: str) -> float | None:
        """The last logged value of `metric`, None if the run never logged it."""
        points = self.history.get(metric)
        return points[-1][1] if points else None


# --- reading runs ---


def is_run(path: Path) -> bool:
    return (path / ".hydra" / "config.yaml").is_file() or bool(metrics_files(path))


def metrics_files(run_dir: Path) -> list[Path]:
    """The CSV logger's files in version order (a resumed run continues in version_1, ...)."""
    files = run_dir.glob("csv/version_*/metrics.csv")
    return sorted(files, key=lambda path: int(path.parent.name.removeprefix("version_")))


def find_runs(patterns: Iterable[str]) -> list[Path]:
    """Run folders matching `patterns` (paths or globs); a folder of runs (a multirun) gives its runs."""
    runs: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob(pattern), key=lambda name: natural(Path(name))) or [pattern]
        for match in map(Path, matches):
            if not match.is_dir():
                raise FileNotFoundError(f"{match} is not a run folder (from '{pattern}')")
            found = [match] if is_run(match) else sorted({hydra.parent for hydra in match.rglob(".hydra")}, key=natural)
            if not found:
                raise FileNotFoundError(
                    f"No runs under {match}: a run folder holds .hydra/config.yaml and csv/version_0/metrics.csv"
                )
            runs += [run for run in found if run not in runs]
    return runs


def natural(path: Path) -> list[Any]:
    """Sort key that puts trial 2 before trial 10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def read_history(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """metric -> [(step, value)] from the CSV logger, where a row holds only the metrics logged at its step."""
    history: dict[str, list[tuple[int, float]]] = {}
    for path in metrics_files(run_dir):
        with open(path, newline="") as file:
            for row in csv.DictReader(file):
                step = int(float(row.get("step") or 0))
                for name, value in row.items():
                    if name not in ("step", "epoch") and value not in ("", None):
                        history.setdefault(name, []).append((step, float(value)))
    return history


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's config as Hydra saved it, flattened, with values resolved (`${...}` never shows) and
    settings built from `paths` left out (they differ between runs without being a choice); without
    .hydra, the resolved config the CSV logger stored."""
    hydra_config = run_dir / ".hydra" / "config.yaml"
    if hydra_config.is_file():
        return resolved_settings(OmegaConf.load(hydra_config))
    for hparams in run_dir.glob("csv/version_*/hparams.yaml"):
        stored = OmegaConf.to_container(OmegaConf.load(hparams), resolve=False)
        return flatten(stored.get("config", stored))
    return {}


def resolved_settings(config: DictConfig) -> dict[str, Any]:
    """Flattened `config` with every interpolation resolved, except settings built from `paths` (Hydra's
    runtime folder cannot be resolved after the run, and where a run wrote is no hyperparameter)."""
    settings = {}
    for key, value in flatten(OmegaConf.to_container(config, resolve=False)).items():
        if key.startswith(IGNORED_PREFIXES) or is_path_setting(str(value)):  # str: lists of paths too
            continue
        node = OmegaConf.select(config, key, throw_on_resolution_failure=False)
        settings[key] = OmegaConf.to_container(node, resolve=True) if isinstance(node, Container) else node
    return settings


def is_path_setting(value: Any) -> bool:
    """An unresolved setting built from `paths` (a run's folder, the data root): where, not what."""
    return isinstance(value, str) and "${paths." in value


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'model': {'lr': 1}} -> {'model.lr': 1}; lists stay whole values."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat |= flatten(value, name) if isinstance(value, dict) and value else {name: value}
    return flat


def load_run(run_dir: Path) -> Run:
    return Run(path=run_dir, config=read_config(run_dir), history=read_history(run_dir))


# --- what to show ---


def differing_hyperparameters(runs: Sequence[Run]) -> list[str]:
    """Config keys whose values are not the same in every run (missing counts as a value)."""
    keys = sorted({key for run in runs for key in run.config if not key.startswith(IGNORED_PREFIXES)})
    missing = object()
    return [key for key in keys if len({repr(run.config.get(key, missing)) for run in runs}) > 1]


def metric_names(runs: Sequence[Run], prefixes: tuple[str, ...]) -> list[str]:
    return sorted({name for run in runs for name in run.history if name.startswith(prefixes)})


def table_columns(runs: Sequence[Run], patterns: Sequence[str] | None) -> list[str]:
    """The final-metric columns: every val/, test/ and evaluate/ metric, or those matching `patterns`
    (names or shell patterns such as 'evaluate/*/fid') in the patterns' order."""
    logged = metric_names(runs, FINAL_PREFIXES)
    if patterns is None:
        return logged
    matches = {pattern: fnmatch.filter(logged, pattern) for pattern in patterns}
    unmatched = [pattern for pattern, names in matches.items() if not names]
    if unmatched:
        raise ValueError(f"no run logged a metric matching {', '.join(unmatched)} (logged: {', '.join(logged)})")
    return list(dict.fromkeys(name for names in matches.values() for name in names))


def primary_metric(runs: Sequence[Run]) -> str | None:
    """The metric the runs were optimised or checkpointed on, when they agree; else the first val/ metric."""
    for key in ("optimized_metric", "callbacks.model_checkpoint.monitor"):
        names = {run.config.get(key) for run in runs}
        if len(names) == 1 and (name := names.pop()) and any(run.final(name) is not None for run in runs):
            return name
    logged = metric_names(runs, ("val/",))
    return logged[0] if logged else None


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Each run's folder name, which is also its W&B run name ('dcgan-mnist-<time>', or '0', '1' for a
    sweep's trials); where names repeat (trials of two sweeps), the path below the folder all runs share."""
    resolved = [run.path.resolve() for run in runs]
    names = [path.name for path in resolved]
    if len(set(names)) == len(names):
        return names
    common = Path(os.path.commonpath(resolved))
    return [str(path.relative_to(common)) if path != common else path.name for path in resolved]


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(format_value(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- pictures ---


def metric_file_name(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", metric) + ".png"


def plot_curves(runs: Sequence[Run], labels: Sequence[str], metric: str, path: Path) -> None:
    """One metric of every run that logged it, against the trainer's step."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2))
    if len(runs) > 10:  # the default cycle repeats its colours after ten
        axes.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    for run, label in zip(runs, labels, strict=True):
        points = run.history.get(metric)
        if points:
            steps, values = zip(*points, strict=True)
            axes.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3, label=label)
    axes.set(xlabel="step", ylabel=metric, title=metric)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="best", ncol=1 + len(runs) // 12)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def evaluation_grid(run_dir: Path) -> Path | None:
    """The sample grid `make evaluate` last wrote beside one of the run's checkpoints, if any."""
    grids = sorted((run_dir / "checkpoints").glob("*_samples.png"), key=lambda path: path.stat().st_mtime)
    return grids[-1] if grids else None


def plot_sample_grids(grids: Sequence[tuple[str, Path]], path: Path) -> None:
    """The runs' evaluation sample grids side by side, each under its run's label."""
    import matplotlib.pyplot as plt
    from PIL import Image

    columns = min(4, len(grids))
    rows = math.ceil(len(grids) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.8 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (label, grid) in zip(axes.flat, grids, strict=False):
        with Image.open(grid) as image:
            axis.imshow(image.convert("RGB"))
        axis.set_title(label, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def axis_positions(values: Sequence[Any]) -> tuple[list[float], list[float], list[str]]:
    """Values mapped onto [0, 1], with tick positions and labels: numbers linearly (log when they span
    more than a decade, as learning rates do), anything else as evenly spaced categories."""
    if all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
        low, high = min(values), max(values)
        use_log = low > 0 and high / low > 10

        def scale(value: float) -> float:
            if high == low:
                return 0.5
            if use_log:
                return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
            return (value - low) / (high - low)

        ticks = sorted(set(values)) if len(set(values)) <= 5 else [low, high]  # few values: label each
        tick_labels = [f"{tick:.3g}" + (" (log)" if use_log and tick == high else "") for tick in ticks]
        return [scale(value) for value in values], [scale(tick) for tick in ticks], tick_labels
    categories = sorted({repr(value) for value in values})
    spacing = {name: (index + 0.5) / len(categories) for index, name in enumerate(categories)}
    return [spacing[repr(value)] for value in values], list(spacing.values()), [name.strip("'") for name in categories]


def runs_with_a_final(runs: Sequence[Run], metric: str) -> list[Run]:
    """The runs whose last `metric` is a finite number (a failed or diverged run has none)."""
    return [run for run in runs if (final := run.final(metric)) is not None and math.isfinite(final)]


def plot_parallel_coordinates(runs: Sequence[Run], parameters: Sequence[str], metric: str, path: Path) -> None:
    """One line per run through its hyperparameters to its final `metric`, coloured by that metric."""
    import matplotlib.pyplot as plt
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    finished = runs_with_a_final(runs, metric)
    columns = [*parameters, metric]
    table = [[run.config.get(name) if name != metric else run.final(metric) for run in finished] for name in columns]
    placed = [axis_positions(values) for values in table]
    finals = table[-1]
    colours = colormaps["viridis"](Normalize(min(finals), max(finals))([*finals]))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.9 * len(columns)), 4.5))
    for index in sorted(range(len(finished)), key=lambda index: -finals[index]):  # the lowest drawn on top
        axes.plot(range(len(columns)), [positions[index] for positions, _, _ in placed], color=colours[index], lw=1.6)
    for x, (_, ticks, tick_labels) in enumerate(placed):
        axes.axvline(x, color="0.3", lw=0.8)
        for tick, text in zip(ticks, tick_labels, strict=True):
            axes.text(x + 0.03, tick, text, fontsize=7, va="center")
    axes.set_xticks(range(len(columns)), [name.replace(".", ".\n", 1) for name in columns], fontsize=7)
    axes.set_yticks([])
    axes.set_xlim(-0.2, len(columns) - 0.5)
    left_out = len(runs) - len(finished)
    note = f"; {left_out} run(s) without a finite {metric} left out" if left_out else ""
    axes.set_title(f"{len(finished)} runs, coloured by final {metric} (dark = low){note}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- the report ---


def split_by_metrics(runs: Sequence[Run]) -> tuple[list[Run], list[Run]]:
    """(runs that logged a metric, runs that logged none: failed at start-up or still starting)."""
    return [run for run in runs if run.history], [run for run in runs if not run.history]


def write_report(
    runs: Sequence[Run],
    out: Path,
    curves: Sequence[str] | None = None,
    left_out: Sequence[Run] = (),
    table: Sequence[str] | None = None,
) -> Path:
    """Pictures and report.md in `out`; returns the report's path. `left_out` runs are only named;
    `table` chooses the final-metric columns (see `table_columns`)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    finals = table_columns(runs, table)
    out.mkdir(parents=True, exist_ok=True)
    labels = run_labels(runs)
    labelled = list(zip(labels, runs, strict=True))
    parameters = differing_hyperparameters(runs)
    lines = [f"# Comparison of {len(runs)} runs", "", *(f"- `{label}`: {run.path}" for label, run in labelled)]
    if left_out:
        lines += ["", f"Left out {len(left_out)} run(s) that logged no metric:"]
        lines += [f"- {run.path}" for run in left_out]
    lines += ["", "## Hyperparameters that differ", ""]
    rows = [[label, *(run.config.get(key) for key in parameters)] for label, run in labelled]
    lines += [markdown_table(["run", *parameters], rows) if parameters else "None: the runs share one config."]
    lines += ["", "## Final metrics (last logged value)", ""]
    rows = [[label, *(run.final(name) for name in finals)] for label, run in labelled]
    lines += [markdown_table(["run", *finals], rows)]
    grids = [(label, grid) for label, run in labelled if (grid := evaluation_grid(run.path)) is not None]
    if grids:
        plot_sample_grids(grids, out / "samples.png")
        lines += ["", "## Samples (the grid `make evaluate` last wrote)", "", "![samples](samples.png)"]
    lines += ["", "## Curves", ""]
    for metric in curves if curves is not None else metric_names(runs, CURVE_PREFIXES):
        plot_curves(runs, labels, metric, out / metric_file_name(metric))
        lines.append(f"![{metric}]({metric_file_name(metric)})")
    metric = primary_metric(runs)
    if metric and parameters and runs_with_a_final(runs, metric):
        plot_parallel_coordinates(runs, parameters, metric, out / "parallel_coordinates.png")
        lines += ["", "## Parallel coordinates", "", "![parallel coordinates](parallel_coordinates.png)"]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genlab.compare", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders or globs, e.g. 'outputs/dcgan/*' or a multirun folder")
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/compare/<time>")
    parser.add_argument("--metrics", nargs="*", default=None, help="curves to draw (default: all train/, val/)")
    parser.add_argument(
        "--table", nargs="*", default=None, help="table columns, names or patterns (default: val/, test/, evaluate/)"
    )
    arguments = parser.parse_args(argv)
    try:
        runs = [load_run(path) for path in find_runs(arguments.runs)]
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    runs, left_out = split_by_metrics(runs)
    if left_out:
        print(
            f"Left out {len(left_out)} run(s) that logged no metric: {', '.join(map(str, (r.path for r in left_out)))}"
        )
    if not runs:
        print(
            "error: none of these runs logged a metric (csv/version_*/metrics.csv): nothing to compare", file=sys.stderr
        )
        return 2
    out = arguments.out or Path("outputs") / "compare" / time.strftime("%Y-%m-%d_%H-%M-%S")
    try:
        report = write_report(runs, out, arguments.metrics, left_out, arguments.table)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.read_text())
    print(f"Report and pictures in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

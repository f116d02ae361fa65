"""Plot a GAN run's training phases from its CSV log: D(x), D(G(z)) and the FID over training batches.

    python benchmarks/gan_phases.py outputs/dcgan/<run>/csv/version_0/metrics.csv docs/gan_phases.png

Reads `train/d_real`, `train/d_fake` (the discriminator's step) and `val/fid` as logged by the GAN
module with `logger=csv`; the x axis is training batches (Lightning's logging step).
"""

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_series(path: Path, names: tuple[str, ...]) -> dict[str, tuple[list[int], list[float]]]:
    """(steps, values) of each named column, skipping the rows where it is empty."""
    series: dict[str, tuple[list[int], list[float]]] = {name: ([], []) for name in names}
    with path.open() as file:
        for row in csv.DictReader(file):
            for name in names:
                if row.get(name):
                    series[name][0].append(int(row["step"]))
                    series[name][1].append(float(row[name]))
    missing = [name for name, (steps, _) in series.items() if not steps]
    if missing:
        raise SystemExit(f"{path} has no {', '.join(missing)}: was it written by a GAN run with logger=csv?")
    return series


def plot(series: dict[str, tuple[list[int], list[float]]], phases: list[tuple[int, int, str]], out: Path) -> None:
    figure, (outputs, fid) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=(3, 2))
    outputs.plot(*series["train/d_real"], label="D(x), real batch", color="tab:blue")
    outputs.plot(*series["train/d_fake"], label="D(G(z)), fake batch", color="tab:red")
    outputs.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    outputs.text(series["train/d_real"][0][-1], 0.52, "equilibrium 1/2", ha="right", va="bottom", color="grey")
    outputs.set_ylim(0, 1)
    outputs.set_ylabel("discriminator output")
    outputs.legend(loc="center left", frameon=False)
    fid.plot(*series["val/fid"], marker="o", color="black")
    fid.set_ylim(bottom=0)
    fid.set_ylabel("val FID (classifier)")
    fid.set_xlabel("training batches")
    for index, (start, end, words) in enumerate(phases):
        for axis in (outputs, fid):
            axis.axvspan(start, end, color="0.9" if index % 2 == 0 else "0.97", zorder=0)
        # Above the plot, in data x and axes y, so the words never hide a curve.
        outputs.text(
            (start + end) / 2,
            1.03,
            words,
            ha="center",
            va="bottom",
            fontsize=8,
            transform=outputs.get_xaxis_transform(),
        )
    for _, end, _ in phases[:-1]:
        for axis in (outputs, fid):
            axis.axvline(end, color="0.6", linewidth=0.8)
    figure.tight_layout()
    figure.savefig(out, dpi=90)


def parse_phase(text: str) -> tuple[int, int, str]:
    start, end, words = text.split(":", 2)
    return int(start), int(end), words.replace("\\n", "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics_csv", type=Path)
    parser.add_argument("out_png", type=Path)
    parser.add_argument("--phase", type=parse_phase, action="append", default=[], help="START:END:words")
    arguments = parser.parse_args()
    data = read_series(arguments.metrics_csv, ("train/d_real", "train/d_fake", "val/fid"))
    plot(data, arguments.phase, arguments.out_png)

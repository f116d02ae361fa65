"""Time of `evaluate.py` with a cold and a warm cache of real-image features, and their ratio.

Three evaluations of the same checkpoint, each in its own process, on one fresh cache folder:
  1. empty cache: trains the feature classifier, extracts and caches the real features;
  2. real features removed, classifier kept: what the real-feature cache alone saves;
  3. warm: both cached.
"seconds" is the evaluation itself (from the JSON); "wall" adds interpreter start and imports.
Without --checkpoint a DCGAN is trained for a few batches first (the cost of evaluating does not
depend on how well the model is trained).

    DATA_ROOT=<datasets> python benchmarks/evaluation_cache.py --num-samples 10000
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def train_checkpoint(folder: Path) -> Path:
    run(
        [
            sys.executable,
            "train.py",
            "experiment=dcgan",
            "logger=csv",
            f"paths.output_dir={folder}",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=20",
            "trainer.limit_val_batches=1",
            "metrics=none",
            "callbacks.model_checkpoint.monitor=null",
            "test=false",
        ]
    )
    return folder / "checkpoints" / "last.ckpt"


def evaluate(checkpoint: Path, cache: Path, output: Path, num_samples: int) -> tuple[float, float]:
    """(evaluation seconds from the JSON, wall seconds of the process)."""
    wall = run(
        [
            sys.executable,
            "evaluate.py",
            f"ckpt_path={checkpoint}",
            f"cache_dir={cache}",
            f"output_dir={output}",
            f"evaluate.num_samples={num_samples}",
        ]
    )
    report = json.loads((output / f"{checkpoint.stem}_evaluation.json").read_text())
    return report["seconds"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--num-samples", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        checkpoint = args.checkpoint or train_checkpoint(scratch / "run")
        cache = scratch / "cache"
        timings = {"empty cache": evaluate(checkpoint, cache, scratch, args.num_samples)}
        shutil.rmtree(cache / "reference_features")
        timings["real features cold"] = evaluate(checkpoint, cache, scratch, args.num_samples)
        timings["warm"] = evaluate(checkpoint, cache, scratch, args.num_samples)
    warm_seconds, warm_wall = timings["warm"]
    print(f"{'cache':<20} {'seconds':>8} {'ratio':>6} {'wall':>8} {'ratio':>6}   (N={args.num_samples})")
    for name, (seconds, wall) in timings.items():
        print(f"{name:<20} {seconds:8.1f} {seconds / warm_seconds:6.2f} {wall:8.1f} {wall / warm_wall:6.2f}")


if __name__ == "__main__":
    main()

"""Training runs a test declares with `@pytest.mark.background_training(*overrides)`: tests/conftest.py
starts them in single-threaded subprocesses as the session begins, so a long run trains beside the
other tests (which compute on one thread meanwhile) instead of adding its whole duration to the session."""

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.config import ROOT

# What `train.py <overrides>` would run (tests.helpers.config.compose_config), writing under argv[1].
TRAIN = (
    "import sys; from pathlib import Path; from genlab.run import train; "
    "from tests.helpers.config import compose_config; train(compose_config(Path(sys.argv[1]), sys.argv[2:]))"
)


class BackgroundTraining:
    """A training run with `overrides` in a single-threaded subprocess writing under `output_dir`."""

    def __init__(self, overrides: list[str], output_dir: Path) -> None:
        self.output_dir, self.log = output_dir, output_dir / "training.log"
        output_dir.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, "OMP_NUM_THREADS": "1"}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", TRAIN, str(output_dir), *overrides],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def checkpoint(self, timeout_s: float) -> Path:
        """Wait for the run to finish and return its last checkpoint; a failure quotes the log's end."""
        try:
            exit_code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"background training ran past {timeout_s} s:\n{self.log_tail()}") from None
        if exit_code != 0:
            raise AssertionError(f"background training failed with exit code {exit_code}:\n{self.log_tail()}")
        return self.output_dir / "checkpoints" / "last.ckpt"

    def training(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.training():
            self.process.kill()
            self.process.wait()

"""DDP with 2 CPU processes: R1 and path-length gradients (double backward) are averaged across ranks."""

import os
import subprocess
import sys

import pytest
import torch

from tests.helpers.config import ROOT


@pytest.mark.slow
def test_regularized_step_leaves_identical_weights_on_both_ranks(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    script = ROOT / "tests" / "stylegan2" / "ddp_run.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = (torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1))
    assert first["discriminator_steps"] == 1 and first["generator_steps"] == 1
    # Each rank saw its own images and noise (its rank-local path-length mean shows it), so equal
    # weights mean every gradient, the double-backward ones included, was averaged.
    assert first["path_length_mean"] != 0 and first["path_length_mean"] != second["path_length_mean"]
    for name in first:
        if name.startswith(("generator.", "discriminator.")) and not name.endswith("w_mean"):
            assert torch.equal(first[name], second[name]), f"{name} differs between ranks"

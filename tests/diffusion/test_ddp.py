"""DDP with 2 CPU processes: DDPM's and flow matching's gradients and held-out loss are averaged across ranks."""

import pytest
import torch

from tests.diffusion.ddp_run import FAMILIES
from tests.helpers.ddp import ROOT, load_ranks, run_script_on_two_ranks


@pytest.mark.slow
def test_training_steps_leave_identical_weights_on_both_ranks(tmp_path):
    run_script_on_two_ranks(ROOT / "tests" / "diffusion" / "ddp_run.py", tmp_path)
    for family in FAMILIES:
        first, second = load_ranks(tmp_path, prefix=f"{family}_")
        # Rank 0 trained on black images, rank 1 on white ones, with their own noise.
        assert first["metrics"]["train/loss"] != second["metrics"]["train/loss"], family
        # The held-out loss is averaged over the ranks' batches, so both log the same number.
        assert first["metrics"]["val/loss"] == second["metrics"]["val/loss"], family
        initial = first["initial_weights"]
        moved = [name for name, value in first["weights"].items() if not torch.equal(value, initial[name])]
        assert any(name.startswith("network.") for name in moved), family
        assert any(name.startswith("network_ema.") for name in moved), family
        for name, value in first["weights"].items():
            assert torch.equal(value, second["weights"][name]), f"{family}: {name} differs between ranks"

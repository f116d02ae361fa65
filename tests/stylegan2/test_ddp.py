"""DDP with 2 CPU processes: R1 and path-length gradients (double backward) are averaged across ranks."""

import pytest
import torch

from tests.helpers.ddp import ROOT, load_ranks, run_script_on_two_ranks


@pytest.mark.slow
def test_regularized_step_leaves_identical_weights_on_both_ranks(tmp_path):
    run_script_on_two_ranks(ROOT / "tests" / "stylegan2" / "ddp_run.py", tmp_path)
    first, second = (saved["weights"] for saved in load_ranks(tmp_path))
    assert first["discriminator_steps"] == 1 and first["generator_steps"] == 1
    # Each rank saw its own images and noise (its rank-local path-length mean shows it), so equal
    # weights mean every gradient, the double-backward ones included, was averaged.
    assert first["path_length_mean"] != 0 and first["path_length_mean"] != second["path_length_mean"]
    for name in first:
        if name.startswith(("generator.", "discriminator.")) and not name.endswith("w_mean"):
            assert torch.equal(first[name], second[name]), f"{name} differs between ranks"

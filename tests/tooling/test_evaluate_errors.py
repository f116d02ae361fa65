"""make evaluate / make sample: mistyped numbers and unwritable folders stop at once, in one line."""

import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from genlab.evaluation.evaluate_checkpoint import evaluate, write_samples
from genlab.evaluation.measure import EvaluationSettingError, EvaluationSettings
from tests.helpers.config import CONF, ROOT


def evaluate_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="evaluate", overrides=list(overrides))


@pytest.mark.parametrize("value", ["abc", 0, 2.5])
def test_a_sample_count_that_is_not_a_positive_whole_number_is_named(value):
    with pytest.raises(EvaluationSettingError, match=f"evaluate.num_samples={value} must be a positive whole number"):
        EvaluationSettings(num_samples=value)


def test_make_evaluate_n_abc_prints_one_line(tmp_path):
    command = [sys.executable, "evaluate.py", f"ckpt_path={tmp_path / 'last.ckpt'}", "evaluate.num_samples=abc"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: evaluate.num_samples=abc must be a positive whole number (make evaluate N=10000 sets it)"
    ]


def test_make_sample_n_abc_is_named(tmp_path):
    with pytest.raises(EvaluationSettingError, match="grid_samples=abc must be a positive whole number"):
        write_samples(evaluate_config(f"ckpt_path={tmp_path / 'last.ckpt'}", "mode=sample", "grid_samples=abc"))


def test_an_output_folder_that_cannot_be_made_fails_before_measuring(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cfg = evaluate_config(f"ckpt_path={tmp_path / 'last.ckpt'}", f"output_dir={blocker / 'results'}")
    with pytest.raises(EvaluationSettingError, match="write the results elsewhere with output_dir=<folder>"):
        evaluate(cfg)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_checkpoint_in_a_read_only_folder_fails_before_measuring(tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(EvaluationSettingError, match=f"Cannot write the results to {folder}"):
            evaluate(evaluate_config(f"ckpt_path={folder / 'last.ckpt'}"))
    finally:
        folder.chmod(0o755)

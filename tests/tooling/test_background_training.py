"""tests/helpers/background.py: a test's training run in a subprocess, its checkpoint or its error."""

import pytest

from tests.helpers.background import BackgroundTraining


def test_a_failing_background_run_reports_its_error(tmp_path):
    run = BackgroundTraining(["experiment=dcgan", "model.loss=nonsense"], tmp_path)
    with pytest.raises(AssertionError, match=r"(?s)failed with exit code .*nonsense"):
        run.checkpoint(timeout_s=300)

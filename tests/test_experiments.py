"""Every conf/experiment/*.yaml runs one training, validation and test batch on CPU."""

import pytest

from lightning_modules.run import train
from tests.conftest import CONF, requires_mnist

EXPERIMENTS = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))


@requires_mnist
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_a_few_steps(experiment, make_config):
    metrics = train(make_config(f"experiment={experiment}", "debug=fdr"))
    assert metrics, "the run logged no metrics"
    assert all(value == value for value in metrics.values()), f"NaN metric in {metrics}"

"""Every conf/experiment/*.yaml runs one training, validation and test batch on CPU."""

import pytest

from genlab.run import compose_config as compose_for_notebooks
from genlab.run import train
from tests.helpers.config import CONF, compose_config, requires_mnist

EXPERIMENTS = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))
# Experiments whose data is not in ../shared/datasets; each names the test that runs it on stand-in data.
NOT_OFFLINE = {
    "cyclegan": "horse2zebra and Inception weights are not in DATA_ROOT; "
    "tests/cyclegan/test_cyclegan_training.py runs this experiment on generated images",
    "stylegan2": "CIFAR-10 (torchvision's copy) is not in DATA_ROOT and one step of the paper-sized networks "
    "takes minutes on a CPU; tests/stylegan2/test_training.py builds this experiment and runs its networks",
}

# Diffusion experiments sample and score a likelihood with many network passes each; two of each
# show the pipeline runs (tests/diffusion/ checks what they compute).
FEW_PASSES = {
    "ddpm": ["model.sample_steps=2", "model.bound_steps=2", "callbacks.sample_grid.num_samples=4"],
    "flow_matching": ["model.sample_steps=2", "model.likelihood_steps=1", "callbacks.sample_grid.num_samples=4"],
    # Its FID judge is a classifier of 32x32 (padded) MNIST, which no other test needs: training it
    # would cost a minute here; the FID pipeline itself runs in the dcgan/cgan/wgan_gp cases.
    "stylegan2_mnist": ["metrics=none"],
}


@requires_mnist
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_a_few_steps(experiment, make_config):
    if experiment in NOT_OFFLINE:
        pytest.skip(NOT_OFFLINE[experiment])
    metrics = train(make_config(f"experiment={experiment}", "debug=fdr", *FEW_PASSES.get(experiment, [])))
    assert metrics, "the run logged no metrics"
    assert all(value == value for value in metrics.values()), f"NaN metric in {metrics}"


def test_compose_config_for_notebooks_is_the_config_train_py_runs(tmp_path):
    quiet = ["logger=csv", "callbacks.progress_bar=null", "trainer.enable_model_summary=false"]
    cfg = compose_for_notebooks(["experiment=vae", "model.encoder.latent_dim=2", *quiet], tmp_path)
    assert cfg == compose_config(tmp_path, ["experiment=vae", "model.encoder.latent_dim=2"])
    assert cfg.paths.output_dir == str(tmp_path) and cfg.model.decoder.latent_dim == 2

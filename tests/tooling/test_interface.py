"""Each family has exactly the capabilities (lightning_modules/interface.py) its docstring claims, and
evaluation picks what it measures and draws by capability, never by class."""

import inspect
import re
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from genlab.evaluation.evaluate_checkpoint import family_grid
from genlab.evaluation.measure import EvaluationSettingError, EvaluationSettings, likelihood_metrics, metric_groups
from lightning_modules.autoencoder import Autoencoder
from lightning_modules.cyclegan import CycleGAN
from lightning_modules.diffusion import DDPM, FlowMatching
from lightning_modules.flow import NormalizingFlow
from lightning_modules.gan import GAN
from lightning_modules.interface import (
    ConfigurableSampler,
    ExtraGrids,
    ImageSampler,
    LikelihoodModel,
    Reconstructor,
    TemperatureSampler,
    Translator,
)
from lightning_modules.stylegan2 import StyleGAN2
from lightning_modules.vae import VAE

CONF = Path(__file__).resolve().parents[2] / "conf"
CAPABILITIES = (
    ConfigurableSampler,
    ExtraGrids,
    ImageSampler,
    TemperatureSampler,
    LikelihoodModel,
    Reconstructor,
    Translator,
)
# One experiment per family class; the CycleGAN is built without its feature classifier (no training).
EXPERIMENTS = {
    GAN: ["experiment=dcgan"],
    CycleGAN: ["experiment=cyclegan_mnist_usps", "model.feature_extractor=null"],
    VAE: ["experiment=vae"],
    Autoencoder: ["experiment=autoencoder"],
    NormalizingFlow: ["experiment=realnvp"],
    DDPM: ["experiment=ddpm"],
    FlowMatching: ["experiment=flow_matching"],
    StyleGAN2: ["experiment=stylegan2_mnist"],
}
METRIC_GROUPS = {
    GAN: ["samples"],
    CycleGAN: ["translations"],
    VAE: ["samples", "test_pass"],
    Autoencoder: ["samples", "test_pass"],
    NormalizingFlow: ["samples", "test_pass"],
    DDPM: ["samples", "test_pass"],
    FlowMatching: ["samples", "test_pass"],
    StyleGAN2: ["samples"],
}


def claimed_capabilities(family: type) -> set[type]:
    """The capabilities named on the `Capabilities (lightning_modules.interface): ...` line of the
    family's docstring, or of its nearest base class that states them (DDPM: DenoisingModel)."""
    line = r"Capabilities \(lightning_modules\.interface\): ([\w, ]+)\."
    matches = (re.search(line, cls.__doc__ or "") for cls in family.__mro__)
    match = next((match for match in matches if match), None)
    assert match, f"neither {family.__name__}'s docstring nor a base class's says its capabilities"
    by_name = {capability.__name__: capability for capability in CAPABILITIES}
    return {by_name[name.strip()] for name in match.group(1).split(",")}


def accepts_calls_like(implementation, contract) -> bool:
    """`implementation` (a bound method) takes every call `contract` (the Protocol's method) allows:
    its required arguments in the same positions, every argument by the same name, and no extra required one."""
    wanted = list(inspect.signature(contract).parameters.values())[1:]  # without self
    offered = inspect.signature(implementation).parameters
    required = [parameter.name for parameter in wanted if parameter.default is inspect.Parameter.empty]
    if list(offered)[: len(required)] != required:
        return False
    for parameter in wanted:
        given = offered.get(parameter.name)
        if given is None or given.kind not in (given.POSITIONAL_OR_KEYWORD, given.KEYWORD_ONLY):
            return False
        if parameter.default is not inspect.Parameter.empty and given.default is inspect.Parameter.empty:
            return False
    names = {parameter.name for parameter in wanted}
    return not [
        given
        for name, given in offered.items()
        if name not in names
        and given.default is given.empty
        and given.kind not in (given.VAR_POSITIONAL, given.VAR_KEYWORD)
    ]


def conforms(module: object, capability: type) -> bool:
    """isinstance (every member present, opted-out methods excepted) and every method callable as written."""
    if not isinstance(module, capability):
        return False
    methods = {
        name: member
        for protocol in capability.__mro__
        if getattr(protocol, "_is_protocol", False) and protocol.__module__ == "lightning_modules.interface"
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }
    return all(accepts_calls_like(getattr(module, name), contract) for name, contract in methods.items())


@pytest.fixture(scope="module")
def families() -> dict[type, nn.Module]:
    modules = {}
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for family, overrides in EXPERIMENTS.items():
            modules[family] = instantiate(compose("train", overrides=overrides).model)
    return modules


@pytest.mark.parametrize("family", EXPERIMENTS, ids=lambda family: family.__name__)
def test_each_family_has_exactly_the_capabilities_it_claims(family: type, families) -> None:
    module = families[family]
    assert type(module) is family
    offered = {capability for capability in CAPABILITIES if conforms(module, capability)}
    assert offered == claimed_capabilities(family)


@pytest.mark.parametrize("family", EXPERIMENTS, ids=lambda family: family.__name__)
def test_evaluation_measures_each_family_by_its_capabilities(family: type, families) -> None:
    assert metric_groups(families[family]) == METRIC_GROUPS[family]


class OnlySamples(nn.Module):
    """A test double of the ImageSampler contract and nothing else: random 8x8 grey images."""

    num_classes = None

    def sample(self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None) -> Tensor:
        return torch.rand(n, 1, 8, 8, generator=generator)


class SamplesAndLikelihood(OnlySamples):
    def likelihood_scale(self) -> str:
        return "exact, on 8-bit images"


def test_a_module_that_only_samples_gets_sample_metrics_and_no_test_pass() -> None:
    assert conforms(OnlySamples(), ImageSampler)
    assert not any(conforms(OnlySamples(), capability) for capability in CAPABILITIES if capability is not ImageSampler)
    assert metric_groups(OnlySamples()) == ["samples"]


def test_a_sampler_that_is_also_a_likelihood_model_gets_its_test_pass_too() -> None:
    assert metric_groups(SamplesAndLikelihood()) == ["samples", "test_pass"]


def test_a_module_without_any_capability_is_refused_by_name() -> None:
    with pytest.raises(EvaluationSettingError, match="Linear offers none of the capabilities"):
        metric_groups(nn.Linear(2, 2))


def test_the_evaluation_grid_of_any_sampler_is_a_square_of_its_samples() -> None:
    grid = family_grid(OnlySamples(), datamodule=None, count=16, temperatures=[1.0])
    assert grid.shape == (3, 4 * 8 + 5 * 2, 4 * 8 + 5 * 2)  # make_grid: 4x4 images, 2-pixel padding, RGB


def test_signature_check_rejects_a_sample_without_labels() -> None:
    """CycleGAN's `sample(n, generator, images)` is no ImageSampler's `sample`: the check must see that."""
    assert not accepts_calls_like(CycleGAN.sample.__get__(object()), ImageSampler.sample)
    assert accepts_calls_like(NormalizingFlow.sample.__get__(object()), TemperatureSampler.sample)


class LikelihoodWithoutBitsPerDim(L.LightningModule):
    """Claims LikelihoodModel but its test pass logs nats only: a broken contract evaluation must refuse."""

    def likelihood_scale(self) -> str:
        return "exact, on 8-bit images"

    def test_step(self, batch: list[Tensor], batch_idx: int) -> None:
        self.log("test/nll_nats", batch[0].sum())


def test_a_likelihood_model_whose_test_pass_logs_no_bits_per_dim_is_refused(tmp_path) -> None:
    data = L.LightningDataModule.from_datasets(test_dataset=TensorDataset(torch.rand(4, 1, 2, 2)), batch_size=2)
    with pytest.raises(RuntimeError, match="logged no test/bits_per_dim"):
        likelihood_metrics(LikelihoodWithoutBitsPerDim(), data, EvaluationSettings(), str(tmp_path))

"""Every flow layer: inverse(forward(x)) == x and log-det == brute-force log|det J|."""

import math

import pytest
import torch

from lightning_modules.networks.flow_layers import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    CenterShift,
    InvertibleConv1x1,
    LogitTransform,
    Split,
    Squeeze,
    check_quantized,
    dequantize,
    quantize,
)
from tests.helpers.flows import brute_force_logdet, perturb_parameters


class SplitAsBijection(torch.nn.Module):
    """Split seen as a same-shape map x -> cat(kept, z), so it is tested like every other layer."""

    def __init__(self, learned_prior: bool) -> None:
        super().__init__()
        self.split = Split(4, learned_prior=learned_prior)

    def forward(self, x):
        (kept, z), logdet = self.split(x)
        return torch.cat([kept, z], dim=1), logdet

    def inverse(self, y):
        kept = self.split.kept_channels
        return self.split.inverse(y[:, :kept], y[:, kept:])


LAYERS = {
    "actnorm": lambda: ActNorm(4),
    "invconv1x1": lambda: InvertibleConv1x1(4),
    "affine_checkerboard_tanh_0": lambda: AffineCoupling(4, 8, "checkerboard", 0, "tanh"),
    "affine_checkerboard_tanh_1": lambda: AffineCoupling(4, 8, "checkerboard", 1, "tanh"),
    "affine_channel_tanh_0": lambda: AffineCoupling(4, 8, "channel", 0, "tanh"),
    "affine_channel_sigmoid_1": lambda: AffineCoupling(4, 8, "channel", 1, "sigmoid"),
    "affine_checkerboard_sigmoid": lambda: AffineCoupling(4, 8, "checkerboard", 0, "sigmoid"),
    "additive_channel": lambda: AdditiveCoupling(4, 8, "channel", 0),
    "additive_checkerboard": lambda: AdditiveCoupling(4, 8, "checkerboard", 1),
    "squeeze": lambda: Squeeze(),
    "split_learned_prior": lambda: SplitAsBijection(True),
    "split_standard_normal": lambda: SplitAsBijection(False),
    "logit": lambda: LogitTransform(0.05),
    "center_shift": lambda: CenterShift(),
}


def make_layer(name: str, dtype: torch.dtype) -> tuple[torch.nn.Module, torch.Tensor]:
    """A layer with non-trivial weights (ActNorm initialised on data) and an input in (0, 1)."""
    torch.manual_seed(0)
    layer = LAYERS[name]().to(dtype)
    x = torch.rand(2, 4, 4, 4, dtype=dtype) * 0.98 + 0.01
    layer.train()
    layer(x)  # data-dependent init where there is one
    perturb_parameters(layer)
    return layer.eval(), x


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float64, 1e-8), (torch.float32, 1e-4)])
def test_inverse_undoes_forward(name, dtype, tolerance):
    layer, x = make_layer(name, dtype)
    y, logdet = layer(x)
    assert logdet.shape == (2,)
    if name != "split_standard_normal":  # the one layer that is the identity by design
        assert y.shape != x.shape or not torch.allclose(y, x), "should not be the identity here"
    assert (layer.inverse(y) - x).abs().max() < tolerance


@pytest.mark.parametrize("name", LAYERS)
def test_logdet_matches_brute_force_jacobian(name):
    layer, x = make_layer(name, torch.float64)
    _, logdet = layer(x)
    expected = brute_force_logdet(lambda v: layer(v)[0], x)
    torch.testing.assert_close(logdet, expected, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("parity", [0, 1])
def test_channel_coupling_with_an_odd_channel_count(parity):
    layer = AffineCoupling(3, 8, "channel", parity, "tanh").double()
    perturb_parameters(layer)
    x = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    y, logdet = layer(x)
    assert (layer.inverse(y) - x).abs().max() < 1e-8
    torch.testing.assert_close(logdet, brute_force_logdet(lambda v: layer(v)[0], x))


def test_zero_initialised_couplings_start_as_identity():
    x = torch.randn(2, 4, 6, 6)
    for layer in [
        AffineCoupling(4, 8, "checkerboard", 0, "tanh"),
        AffineCoupling(4, 8, "channel", 1, "sigmoid"),
        AdditiveCoupling(4, 8, "channel", 0),
        SplitAsBijection(True),
    ]:
        y, logdet = layer(x)
        torch.testing.assert_close(y, x)
        torch.testing.assert_close(logdet, torch.zeros(2))


def test_affine_scale_is_bounded():
    layer = AffineCoupling(4, 8, "channel", 0, "sigmoid")
    with torch.no_grad():
        layer.net[-1].bias.fill_(100.0)  # a huge raw scale output
    _, logdet = layer(torch.randn(1, 4, 2, 2))
    # sigmoid(h + 2) / sigmoid(2) <= 1 / sigmoid(2): log-scale <= 0.127 for each of 8 entries
    assert logdet.item() <= 8 * 0.1270 + 1e-4


def test_actnorm_initialises_to_zero_mean_unit_variance():
    norm = ActNorm(3)
    x = torch.randn(16, 3, 5, 5) * torch.tensor([1.0, 5.0, 0.1]).view(1, 3, 1, 1) + 2.0
    y, _ = norm(x)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    std = y.std(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(std, torch.ones(3), atol=1e-4, rtol=0)
    assert norm.initialized.item() == 1


def test_actnorm_does_not_initialise_in_eval_mode():
    """Lightning's sanity check runs validation in eval mode: it must not trigger the init."""
    norm = ActNorm(3).eval()
    norm(torch.randn(4, 3, 2, 2) + 7)
    assert norm.initialized.item() == 0
    assert norm.bias.abs().sum() == 0


def test_actnorm_flag_survives_a_checkpoint_so_loading_does_not_reinitialise():
    trained = ActNorm(2)
    trained(torch.randn(8, 2, 3, 3))
    assert "initialized" in trained.state_dict()
    reloaded = ActNorm(2)
    reloaded.load_state_dict(trained.state_dict())
    reloaded.train()
    reloaded(torch.randn(8, 2, 3, 3) * 10 + 5)  # very different data: must not re-initialise
    torch.testing.assert_close(reloaded.bias, trained.bias)
    torch.testing.assert_close(reloaded.log_scale, trained.log_scale)


def test_invertible_conv_weight_is_its_lu_product_and_starts_orthogonal():
    conv = InvertibleConv1x1(5)
    weight = conv.weight()
    torch.testing.assert_close(weight @ weight.T, torch.eye(5), atol=1e-5, rtol=0)
    assert torch.slogdet(weight)[1].abs() < 1e-5


def test_squeeze_moves_each_2x2_patch_into_channels():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y, _ = Squeeze()(x)
    assert y.shape == (1, 4, 2, 2)
    # top-left patch [[0, 1], [4, 5]] lands in the channels at spatial position (0, 0)
    assert y[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]


def test_squeeze_rejects_odd_sizes():
    with pytest.raises(ValueError, match="even height and width, got 7x7"):
        Squeeze()(torch.zeros(1, 1, 7, 7))


@pytest.mark.parametrize("alpha", [0.0, 0.5, -0.1, 0.7])
def test_logit_alpha_outside_open_interval_is_rejected(alpha):
    with pytest.raises(ValueError, match=r"alpha must lie in \(0, 0.5\)"):
        LogitTransform(alpha)


def test_logit_logdet_hand_computation():
    """x = 0.5 maps to s = 0.5, y = 0: log|dy/dx| = log(1 - 2a) - 2 log 0.5 per dimension."""
    alpha = 0.1
    y, logdet = LogitTransform(alpha)(torch.full((1, 1, 2, 2), 0.5, dtype=torch.float64))
    assert y.abs().max() == 0
    expected = 4 * (math.log(0.8) + 2 * math.log(2.0))
    torch.testing.assert_close(logdet, torch.tensor([expected], dtype=torch.float64))


def test_coupling_arguments_are_validated():
    with pytest.raises(ValueError, match="Unknown coupling mask 'stripes'"):
        AffineCoupling(4, 8, "stripes")
    with pytest.raises(ValueError, match="Unknown coupling scale 'exp'"):
        AffineCoupling(4, 8, "channel", scale="exp")
    with pytest.raises(ValueError, match="channel mask needs at least 2 channels"):
        AffineCoupling(1, 8, "channel")
    with pytest.raises(ValueError, match="hidden_channels must be positive, got 0"):
        AdditiveCoupling(4, 0)


def test_dequantize_stays_in_its_bin_and_quantize_recovers_8_bit_data():
    x = torch.randint(0, 256, (4, 3, 5, 5)).float() / 255
    u = dequantize(x, generator=torch.Generator().manual_seed(0))
    assert u.min() >= 0 and u.max() < 1
    assert torch.equal(torch.floor(u * 256), torch.round(x * 255))
    assert torch.equal(quantize(u), x)


def test_check_quantized_accepts_8_bit_and_rejects_other_data():
    check_quantized(torch.randint(0, 256, (2, 1, 4, 4)).float() / 255)
    with pytest.raises(ValueError, match="not on the 8-bit grid"):
        check_quantized(torch.full((1, 1, 2, 2), 0.5 / 255))
    with pytest.raises(ValueError, match=r"expect images in \[0, 1\]"):
        check_quantized(torch.full((1, 1, 2, 2), -0.5))

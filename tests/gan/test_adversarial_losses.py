import math

import pytest
import torch

from lightning_modules.objectives import adversarial as losses

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def log_sigmoid(x: float) -> float:
    return math.log(1 / (1 + math.exp(-x)))


def test_non_saturating_matches_cross_entropy_by_hand():
    expected_d = (
        -(log_sigmoid(2.0) + log_sigmoid(-1.0)) / 2
        - (math.log(1 - 1 / (1 + math.exp(-0.5))) + math.log(1 - 1 / (1 + math.exp(3.0)))) / 2
    )
    assert losses.non_saturating_discriminator_loss(REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    expected_g = -(log_sigmoid(0.5) + log_sigmoid(-3.0)) / 2
    assert losses.non_saturating_generator_loss(FAKE).item() == pytest.approx(expected_g, rel=1e-6)


def test_minimax_generator_loss_is_mean_log_one_minus_d():
    expected = (math.log(1 - 1 / (1 + math.exp(-0.5))) + math.log(1 - 1 / (1 + math.exp(3.0)))) / 2
    assert losses.minimax_generator_loss(FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_hinge_by_hand():
    # relu(1-2)=0, relu(1+1)=2 -> 1 ; relu(1+0.5)=1.5, relu(1-3)=0 -> 0.75
    assert losses.hinge_discriminator_loss(REAL, FAKE).item() == pytest.approx(1.75)
    assert losses.hinge_generator_loss(FAKE).item() == pytest.approx(1.25)


def test_least_squares_by_hand():
    # 0.5*((1)^2+(-2)^2)/2 + 0.5*(0.25+9)/2
    assert losses.least_squares_discriminator_loss(REAL, FAKE).item() == pytest.approx(1.25 + 2.3125)
    assert losses.least_squares_generator_loss(FAKE).item() == pytest.approx((0.25 + 16) / 2)


def test_wasserstein_by_hand():
    assert losses.wasserstein_discriminator_loss(REAL, FAKE).item() == pytest.approx(-1.25 - 0.5)
    assert losses.wasserstein_generator_loss(FAKE).item() == pytest.approx(1.25)


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = <w, x> has gradient w everywhere, so the penalty is (|w| - 1)^2 for any mixing.
    weight = torch.tensor([3.0, 4.0]).reshape(1, 2, 1, 1)

    def critic(x):
        return (x * weight).sum(dim=(1, 2, 3))

    real, fake = torch.randn(5, 2, 1, 1), torch.randn(5, 2, 1, 1)
    penalty = losses.gradient_penalty(critic, real, fake, torch.rand(5, 1, 1, 1))
    assert penalty.item() == pytest.approx(16.0)


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="Unknown loss 'hinj'. Available: non_saturating, minimax"):
        losses.adversarial_loss("hinj")

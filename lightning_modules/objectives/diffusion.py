"""Denoising diffusion (DDPM, Ho et al. 2020) as pure functions: forward noising, the posterior,
prediction targets, the training loss and the variational bound in nats per image.

Images are in [-1, 1]; `steps` are 0-based (see diffusion_schedules.py). Every function takes the
schedule's tables and returns tensors; none holds state or draws noise itself, so callers decide
where noise comes from (a checkpointed generator in training, per-image streams in evaluation).
"""

from collections.abc import Callable

import torch
from torch import Tensor

from lightning_modules.objectives.diffusion_schedules import DiffusionSchedule, NoiseLevel, at_steps, noise_level

PREDICTION_TYPES = ("epsilon", "x0", "v")
LOSS_WEIGHTINGS = ("unweighted", "epsilon_equivalent")
REVERSE_VARIANCES = ("large", "small")


def check_choice(kind: str, name: str, choices: tuple[str, ...]) -> str:
    if name not in choices:
        raise ValueError(f"Unknown {kind} '{name}'. Available: {', '.join(choices)}")
    return name


# --- the forward process and its posterior ---


def diffuse(x0: Tensor, steps: Tensor, noise: Tensor, schedule: DiffusionSchedule) -> Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, a draw from q(x_t | x_0) (eq. 4)."""
    level = noise_level(schedule, steps, x0)
    return level.signal * x0 + level.noise * noise


def posterior_mean(x0: Tensor, xt: Tensor, steps: Tensor, schedule: DiffusionSchedule) -> Tensor:
    """The mean of q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eq. 7):
    sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0 + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t.
    """
    x0_coefficient = at_steps(schedule.posterior_x0_coefficient, steps, xt)
    return x0_coefficient * x0 + at_steps(schedule.posterior_xt_coefficient, steps, xt) * xt


def reverse_variances(schedule: DiffusionSchedule, kind: str) -> Tensor:
    """The fixed variances of p(x_{t-1} | x_t), shape (T,): "large" sigma_t^2 = beta_t, "small"
    sigma_t^2 = beta~_t (Ho et al. 2020, section 3.2). Step 0 takes beta~ of step 1 in both, as
    Ho et al.'s code does: beta~_0 = 0 and the decoder needs a positive variance."""
    check_choice("reverse variance", kind, REVERSE_VARIANCES)
    table = schedule.betas if kind == "large" else schedule.posterior_variance
    if schedule.num_steps == 1:
        return table.clone()
    return torch.cat([schedule.posterior_variance[1:2], table[1:]])


# --- what the network predicts ---


def prediction_target(prediction_type: str, x0: Tensor, noise: Tensor, level: NoiseLevel) -> Tensor:
    """The regression target: epsilon, x_0, or v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0
    (Salimans & Ho 2022, section 4)."""
    check_choice("prediction type", prediction_type, PREDICTION_TYPES)
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "x0":
        return x0
    return level.signal * noise - level.noise * x0


def denoised_and_noise(prediction_type: str, output: Tensor, xt: Tensor, level: NoiseLevel) -> tuple[Tensor, Tensor]:
    """(x_0, epsilon) implied by a network output of `prediction_type` at x_t."""
    check_choice("prediction type", prediction_type, PREDICTION_TYPES)
    if prediction_type == "epsilon":
        return (xt - level.noise * output) / level.signal, output
    if prediction_type == "x0":
        return output, (xt - level.signal * output) / level.noise
    return level.signal * xt - level.noise * output, level.noise * xt + level.signal * output


def loss_weight(prediction_type: str, weighting: str, level: NoiseLevel) -> Tensor:
    """Per-image weight of the squared error. "unweighted": Ho et al.'s L_simple on whichever
    target. "epsilon_equivalent": the weight that makes the x_0 and v errors equal the epsilon
    error they imply (x_0: SNR = alpha_bar / (1 - alpha_bar); v: alpha_bar)."""
    check_choice("loss weighting", weighting, LOSS_WEIGHTINGS)
    if weighting == "unweighted" or prediction_type == "epsilon":
        return torch.ones_like(level.signal)
    if prediction_type == "x0":
        return (level.signal / level.noise) ** 2
    return level.signal**2


def denoising_loss(output: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Mean over images of weight * mean squared error over pixels, in float32 whatever the autocast dtype."""
    squared_error = (output.float() - target.float()).pow(2).flatten(1).mean(dim=1)
    return (weight.float().flatten() * squared_error).mean()


# --- the variational bound (Ho et al. 2020, eq. 5) in nats per image ---


def gaussian_kl(mean_q: Tensor, variance_q: Tensor, mean_p: Tensor, variance_p: Tensor) -> Tensor:
    """KL(N(mean_q, variance_q) || N(mean_p, variance_p)) per image, summed over pixels."""
    kl = 0.5 * (torch.log(variance_p / variance_q) + (variance_q + (mean_q - mean_p) ** 2) / variance_p - 1)
    return kl.flatten(1).sum(dim=1)


def discretized_gaussian_log_likelihood(x0: Tensor, mean: Tensor, variance: Tensor, num_bits: int = 8) -> Tensor:
    """log P(x_0 | x_1) per image: N(mean, variance) integrated over each pixel's bin of the 2^b-level
    grid on [-1, 1], the end bins reaching to -inf and +inf (Ho et al. 2020, eq. 13), in float64."""
    x0, mean, variance = x0.double(), mean.double(), variance.double()
    half_width = 1.0 / (2**num_bits - 1)
    scale = variance.sqrt()
    upper = torch.where(x0 > 1 - half_width, torch.inf, (x0 + half_width - mean) / scale)
    lower = torch.where(x0 < -1 + half_width, -torch.inf, (x0 - half_width - mean) / scale)
    # Tails: subtract in the tail that keeps precision (upper CDFs above the mean).
    left = torch.special.ndtr(upper) - torch.special.ndtr(lower)
    right = torch.special.ndtr(-lower) - torch.special.ndtr(-upper)
    mass = torch.where(lower > 0, right, left)
    return torch.log(mass.clamp(min=1e-300)).flatten(1).sum(dim=1)


def prior_term(x0: Tensor, schedule: DiffusionSchedule) -> Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per image: no parameters, small for a good schedule."""
    x0 = x0.double()
    level = noise_level(schedule, torch.full((len(x0),), schedule.num_steps - 1, dtype=torch.long), x0)
    return gaussian_kl(level.signal * x0, (level.noise**2).expand_as(x0), torch.zeros_like(x0), torch.ones_like(x0))


def transition_term(
    x0: Tensor, xt: Tensor, predicted_x0: Tensor, steps: Tensor, schedule: DiffusionSchedule, variances: Tensor
) -> Tensor:
    """L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) per image, for steps >= 1."""
    x0, xt, predicted_x0 = x0.double(), xt.double(), predicted_x0.double()
    true_mean = posterior_mean(x0, xt, steps, schedule)
    model_mean = posterior_mean(predicted_x0, xt, steps, schedule)
    true_variance = at_steps(schedule.posterior_variance, steps, xt).expand_as(xt)
    model_variance = at_steps(variances, steps, xt).expand_as(xt)
    return gaussian_kl(true_mean, true_variance, model_mean, model_variance)


def decoder_term(
    x0: Tensor, x1: Tensor, predicted_x0: Tensor, schedule: DiffusionSchedule, variances: Tensor, num_bits: int = 8
) -> Tensor:
    """L_0 = -log p(x_0 | x_1) per image under the discretized Gaussian decoder."""
    first = torch.zeros(len(x0), dtype=torch.long)
    mean = posterior_mean(predicted_x0.double(), x1.double(), first, schedule)
    variance = at_steps(variances, first, x1.double()).expand_as(mean)
    return -discretized_gaussian_log_likelihood(x0, mean, variance, num_bits)


def stratified_steps(num_train_steps: int, num_strata: int, uniform: Tensor) -> Tensor:
    """One step per stratum of 1..T-1 for each image: step_k = 1 + floor((k + u_k) (T - 1) / K).

    `uniform` holds U[0, 1) draws of shape (K, B). Over k and u the steps cover 1..T-1 evenly, so
    (T - 1) / K times the sum of their terms is an unbiased estimate of the bound's middle sum,
    with less variance than K independent uniform steps.
    """
    if not 1 <= num_strata <= num_train_steps - 1:
        raise ValueError(
            f"bound_steps must be in [1, T - 1 = {num_train_steps - 1}] or null (every step), got {num_strata}"
        )
    strata = torch.arange(num_strata, dtype=torch.float64).reshape(-1, *([1] * (uniform.dim() - 1)))
    steps = 1 + torch.floor((strata + uniform.double()) * (num_train_steps - 1) / num_strata).long()
    return steps.clamp(max=num_train_steps - 1)


def variational_bound(
    denoise: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    schedule: DiffusionSchedule,
    variances: Tensor,
    draw_noise: Callable[[], Tensor],
    transition_steps: Tensor | None = None,
    num_bits: int = 8,
) -> dict[str, Tensor]:
    """-log P(x_0) <= L_T + sum_{t>=1} L_{t-1} + L_0 per image in nats (Ho et al. 2020, eq. 5).

    `denoise(x_t, steps)` returns the predicted x_0; `draw_noise()` fresh noise shaped like x0,
    called in a fixed order. `transition_steps` of shape (K, B), e.g. from `stratified_steps`,
    estimates the middle sum as (T - 1) / K times K terms per image; None sums every step exactly.
    """
    batch, num_steps = len(x0), schedule.num_steps
    if transition_steps is None:
        transition_steps = torch.arange(1, num_steps).reshape(-1, 1).expand(-1, batch)
    transitions = x0.new_zeros(batch, dtype=torch.float64)
    for steps in transition_steps:
        xt = diffuse(x0, steps, draw_noise(), schedule)
        transitions = transitions + transition_term(x0, xt, denoise(xt, steps), steps, schedule, variances)
    if len(transition_steps):
        transitions = transitions * ((num_steps - 1) / len(transition_steps))
    first = torch.zeros(batch, dtype=torch.long)
    x1 = diffuse(x0, first, draw_noise(), schedule)
    decoder = decoder_term(x0, x1, denoise(x1, first), schedule, variances, num_bits)
    prior = prior_term(x0, schedule)
    return {"nll_bound_nats": prior + transitions + decoder, "prior_nats": prior, "decoder_nats": decoder}

"""Which samplers each family offers, and the checks every sampler call makes first."""

DIFFUSION_SAMPLERS = ("ddpm", "ddim")
FLOW_SAMPLERS = ("euler", "heun")


def check_sampler(name: str, available: tuple[str, ...]) -> str:
    if name not in available:
        raise ValueError(f"Unknown sampler '{name}'. Available: {', '.join(available)}")
    return name


def check_steps(steps: int, maximum: int | None = None) -> int:
    """Sampler step counts are whole numbers from 1 (to the schedule's T for diffusion)."""
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps}")
    if maximum is not None and steps > maximum:
        raise ValueError(
            f"steps={steps} exceeds the T={maximum} steps the model was trained with; use at most {maximum}"
        )
    return int(steps)


def check_guidance(scale: float, conditional: bool) -> float:
    """Guidance needs a class-conditional model; 1 means plain conditional sampling, 0 unconditional."""
    if scale < 0:
        raise ValueError(f"guidance must be >= 0 (0: unconditional, 1: conditional, >1: guided), got {scale}")
    if scale != 1 and not conditional:
        raise ValueError(
            f"guidance={scale} needs a class-conditional model trained with label dropout, but this model is "
            "unconditional (model.network.num_classes is null); drop the guidance setting."
        )
    return float(scale)

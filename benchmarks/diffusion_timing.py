"""Seconds per training step and per sample: DDPM and flow matching beside DCGAN, VAE and RealNVP.

Every family trains on the same MNIST batches (its experiment config, `--batch-size`) through the
same Lightning Trainer for `--warmup` untimed and `--steps` timed batches; then draws `--samples`
images. Diffusion and flow matching are timed at 10, 50 and 1000 sampler steps (DDPM: DDIM at 10
and 50, ancestral at its T = 1000; flow matching: Heun ODE steps). Both wall and process CPU
seconds are printed: on a shared machine the CPU seconds are the comparable number.

    python benchmarks/diffusion_timing.py --steps 20 --batch-size 64 --samples 16
"""

import argparse
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from step_timer import StepTimer, clocks, timing_trainer

CONF = Path(__file__).resolve().parents[1] / "conf"
FAMILIES = ("dcgan", "vae", "realnvp", "ddpm", "flow_matching")
SAMPLER_STEPS = {
    "ddpm": [("ddim", 10), ("ddim", 50), ("ddpm", None)],
    "flow_matching": [("heun", 10), ("heun", 50), ("heun", 1000)],
}


def build(experiment: str, batch_size: int):
    overrides = [f"experiment={experiment}", f"data.batch_size={batch_size}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    torch.manual_seed(0)
    return cfg, instantiate(cfg.model)


def time_training(experiment: str, args: argparse.Namespace, root: Path) -> tuple[float, float]:
    cfg, module = build(experiment, args.batch_size)
    datamodule = instantiate(cfg.data)
    timer = StepTimer(args.warmup)
    trainer = timing_trainer(
        timer, accelerator="cpu", limit_train_batches=args.warmup + args.steps, default_root_dir=root
    )
    trainer.fit(module, datamodule)
    return timer.wall_seconds / args.steps, timer.cpu_seconds / args.steps


def time_sampling(module: L.LightningModule, count: int) -> tuple[float, float]:
    start = clocks()
    module.sample(count, generator=torch.Generator().manual_seed(0))
    end = clocks()
    return tuple((e - s) / count for s, e in zip(start, end, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--root", default="outputs/benchmarks/diffusion_timing")
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}, batch {args.batch_size}, {args.steps} timed steps")
    print("| model | train step wall s | train step CPU s | sampler | per sample wall s | per sample CPU s |")
    print("|---|---|---|---|---|---|")
    for experiment in args.families.split(","):
        step_wall, step_cpu = time_training(experiment, args, Path(args.root))
        _, module = build(experiment, args.batch_size)
        module.eval()
        for sampler, steps in SAMPLER_STEPS.get(experiment, [(None, None)]):
            label = "one pass"
            if sampler is not None:
                settings = module.configure_sampling(sampler=sampler, steps=steps)
                label = f"{settings.sampler} {module.sampling_step_count()} steps"
            wall, cpu = time_sampling(module, args.samples)
            print(f"| {experiment} | {step_wall:.3f} | {step_cpu:.3f} | {label} | {wall:.4f} | {cpu:.4f} |", flush=True)


if __name__ == "__main__":
    main()

"""Iterations/second of one CycleGAN training step: our LightningModule vs a plain PyTorch loop.

Both sides run the same networks, losses, image pools and optimizers on the same random images,
so the difference is the cost of Lightning's manual-optimization machinery. Example:

    OMP_NUM_THREADS=1 python benchmarks/cyclegan_step.py --size 128 --steps 20
    python benchmarks/cyclegan_step.py --size 256 --device cuda --steps 50
"""

import argparse
import statistics
import time

import torch
from step_timer import StepTimer, synchronize, timing_trainer
from torch.utils.data import DataLoader, Dataset

from lightning_modules.cyclegan import CycleGAN
from lightning_modules.networks.cyclegan import PatchDiscriminator, ResNetGenerator
from lightning_modules.objectives.adversarial import least_squares_discriminator_loss, least_squares_generator_loss
from lightning_modules.objectives.cycle import cycle_consistency_loss, identity_loss
from lightning_modules.training.image_pool import ImagePool


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=1, help="the paper uses 1")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per side")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each side")
    return parser.parse_args()


def networks(size: int) -> dict[str, torch.nn.Module]:
    """The paper's networks: ResNet-9 at 256 px and above, ResNet-6 below."""
    blocks = 9 if size >= 256 else 6
    return {
        "generator_ab": ResNetGenerator(n_residual_blocks=blocks),
        "generator_ba": ResNetGenerator(n_residual_blocks=blocks),
        "discriminator_a": PatchDiscriminator(),
        "discriminator_b": PatchDiscriminator(),
    }


def adam(parameters) -> torch.optim.Optimizer:
    return torch.optim.Adam(parameters, lr=2e-4, betas=(0.5, 0.999))


class RandomPairs(Dataset):
    """A fixed number of random A/B image pairs in [0, 1]."""

    def __init__(self, count: int, size: int) -> None:
        self.count, self.size = count, size

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(index)
        return {d: torch.rand(3, self.size, self.size, generator=generator) for d in "AB"}


def plain_step(nets, optimizers, pools, real_a, real_b) -> None:
    """The same step written directly: generators (discriminators frozen), then discriminators."""
    g_ab, g_ba, d_a, d_b = (nets[k] for k in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"))
    optimizer_g, optimizer_d = optimizers
    for parameter in [*d_a.parameters(), *d_b.parameters()]:
        parameter.requires_grad_(False)
    fake_b, fake_a = g_ab(real_a), g_ba(real_b)
    loss_g = (
        least_squares_generator_loss(d_b(fake_b))
        + least_squares_generator_loss(d_a(fake_a))
        + 10 * cycle_consistency_loss(real_a, g_ba(fake_b))
        + 10 * cycle_consistency_loss(real_b, g_ab(fake_a))
        + 5 * identity_loss(real_b, g_ab(real_b))
        + 5 * identity_loss(real_a, g_ba(real_a))
    )
    optimizer_g.zero_grad(set_to_none=True)
    loss_g.backward()
    optimizer_g.step()
    for parameter in [*d_a.parameters(), *d_b.parameters()]:
        parameter.requires_grad_(True)
    loss_d = least_squares_discriminator_loss(d_a(real_a), d_a(pools["A"].query(fake_a))) + (
        least_squares_discriminator_loss(d_b(real_b), d_b(pools["B"].query(fake_b)))
    )
    optimizer_d.zero_grad(set_to_none=True)
    loss_d.backward()
    optimizer_d.step()


def time_plain_loop(args: argparse.Namespace, device: torch.device) -> float:
    nets = {name: net.to(device) for name, net in networks(args.size).items()}
    optimizers = (
        adam([*nets["generator_ab"].parameters(), *nets["generator_ba"].parameters()]),
        adam([*nets["discriminator_a"].parameters(), *nets["discriminator_b"].parameters()]),
    )
    pools = {"A": ImagePool(50), "B": ImagePool(50)}
    loader = DataLoader(RandomPairs(args.warmup + args.steps, args.size), batch_size=args.batch_size)
    start = 0.0
    for index, batch in enumerate(loader):
        if index == args.warmup:
            synchronize(device)
            start = time.perf_counter()
        real_a, real_b = (batch[d].to(device) * 2 - 1 for d in "AB")
        plain_step(nets, optimizers, pools, real_a, real_b)
    synchronize(device)
    return args.steps / (time.perf_counter() - start)


def time_lightning_module(args: argparse.Namespace, device: torch.device) -> float:
    # n_epochs/n_epochs_decay match the 1-epoch run, so no schedule warning.
    module = CycleGAN(**networks(args.size), optimizer_g=adam, optimizer_d=adam, n_epochs=1, n_epochs_decay=0)
    timer = StepTimer(args.warmup)
    trainer = timing_trainer(timer, accelerator=device.type, devices=1)
    loader = DataLoader(RandomPairs(args.warmup + args.steps, args.size), batch_size=args.batch_size)
    trainer.fit(module, train_dataloaders=loader)
    return args.steps / timer.wall_seconds


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # Alternate the two sides so a change in machine load hits both alike; report the median.
    plain, lightning = [], []
    for _ in range(args.repeats):
        torch.manual_seed(0)
        plain.append(time_plain_loop(args, device))
        torch.manual_seed(0)
        lightning.append(time_lightning_module(args, device))
    print(
        f"CycleGAN step, {args.size}x{args.size}, batch {args.batch_size}, {device.type}, "
        f"{torch.get_num_threads()} thread(s), {args.steps} timed steps after {args.warmup} warm-up, "
        f"median of {args.repeats} alternating runs"
    )
    print(f"{'implementation':<24}{'iterations/s':>14}   runs")
    for name, rates in (("plain PyTorch loop", plain), ("Lightning CycleGAN", lightning)):
        print(f"{name:<24}{statistics.median(rates):>14.3f}   {', '.join(f'{r:.3f}' for r in rates)}")
    print(f"Lightning / plain: {statistics.median(lightning) / statistics.median(plain):.3f}")


if __name__ == "__main__":
    main()

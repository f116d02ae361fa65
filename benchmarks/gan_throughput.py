"""Images/second of DCGAN training: the Lightning module + Trainer vs a plain PyTorch loop.

Both use the same networks, optimizers, batch size, data loader, losses and generator EMA; both
run `--warmup` untimed steps, then `--steps` timed ones. Runs alternate and the medians are printed.

    python benchmarks/gan_throughput.py --steps 200 --repeats 5 [--device cuda --precision bf16-mixed --channels-last]
"""

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
from hydra.utils import instantiate
from step_timer import StepTimer, synchronize, timing_trainer

from genlab.run import compose_conf
from lightning_modules.objectives.adversarial import adversarial_loss
from lightning_modules.training.ema import ema_copy


def build(args: argparse.Namespace):
    overrides = ["experiment=dcgan", f"data.batch_size={args.batch_size}", f"data.num_workers={args.num_workers}"]
    cfg = compose_conf("train", overrides)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return cfg, datamodule


def lightning_run(cfg, datamodule, args) -> float:
    torch.manual_seed(0)
    module = instantiate(cfg.model)
    if args.channels_last:
        module = module.to(memory_format=torch.channels_last)
    timer = StepTimer(args.warmup)
    trainer = timing_trainer(
        timer,
        accelerator=args.device,
        devices=1,
        precision=args.precision,
        limit_train_batches=args.warmup + args.steps,
    )
    trainer.fit(module, datamodule)
    return args.steps * args.batch_size / timer.wall_seconds


def plain_run(cfg, datamodule, args) -> float:
    torch.manual_seed(0)
    device = torch.device("cuda" if args.device == "cuda" else "cpu")
    memory_format = torch.channels_last if args.channels_last else torch.preserve_format
    generator = instantiate(cfg.model.generator).to(device, memory_format=memory_format)
    discriminator = instantiate(cfg.model.discriminator).to(device, memory_format=memory_format)
    generator_ema = ema_copy(generator, cfg.model.ema_decay)
    optimizer_g = instantiate(cfg.model.optimizer_g)(generator.parameters())
    optimizer_d = instantiate(cfg.model.optimizer_d)(discriminator.parameters())
    discriminator_loss, generator_loss = adversarial_loss(cfg.model.loss)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16-mixed" else nullcontext()
    start = 0.0
    for step, (images, _) in enumerate(datamodule.train_dataloader()):
        if step == args.warmup:
            synchronize(device)
            start = time.perf_counter()
        if step == args.warmup + args.steps:
            break
        real = images.to(device, non_blocking=True) * 2 - 1
        with autocast:
            fake = generator(torch.randn(len(real), generator.latent_dim, device=device))
            loss_d = discriminator_loss(discriminator(real), discriminator(fake.detach()))
        optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        optimizer_d.step()
        with autocast:
            loss_g = generator_loss(discriminator(fake))
        optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        optimizer_g.step()
        generator_ema.update_parameters(generator)
    synchronize(device)
    return args.steps * args.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["32-true", "bf16-mixed"], default="32-true")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    cfg, datamodule = build(args)
    lightning, plain = [], []
    for repeat in range(args.repeats):
        lightning.append(lightning_run(cfg, datamodule, args))
        plain.append(plain_run(cfg, datamodule, args))
        print(f"run {repeat + 1}: lightning {lightning[-1]:.1f} img/s, plain {plain[-1]:.1f} img/s")
    ratio = statistics.median(lightning) / statistics.median(plain)
    print(
        f"DCGAN {cfg.data.name} {args.device} {args.precision}{' channels_last' if args.channels_last else ''} "
        f"batch {args.batch_size}, {args.steps} steps, median of {args.repeats}: "
        f"lightning {statistics.median(lightning):.1f} img/s, plain {statistics.median(plain):.1f} img/s, "
        f"ratio {ratio:.3f}"
    )


if __name__ == "__main__":
    main()

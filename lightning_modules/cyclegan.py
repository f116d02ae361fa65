"""CycleGAN (Zhu et al. 2017): unpaired translation between image domains A and B.

Two generators (A->B, B->A) and two PatchGAN discriminators (one judging each domain), trained
with Lightning manual optimization. Optimizer order, the same in every adversarial module:
[generator, discriminator]; here one Adam over both generators and one over both discriminators,
as in the reference implementation. Each batch runs the generator step first, with the
discriminators frozen, then the discriminator step on fakes drawn from the image pools.
`trainer.global_step` therefore advances by 2 per batch.
"""

import functools
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchvision.utils import save_image

from lightning_modules.metrics.feature_extractors import FeatureExtractor, InceptionUnavailableError
from lightning_modules.objectives.adversarial import adversarial_loss
from lightning_modules.objectives.cycle import cycle_consistency_loss, identity_loss
from lightning_modules.training.guards import check_finite
from lightning_modules.training.image_pool import ImagePool
from lightning_modules.training.optimizer_factory import OptimizerFactory, checked_optimizer_factory
from lightning_modules.training.schedules import linear_decay_factor

# The paper halves the discriminator objective "to slow down the rate at which D learns relative
# to G" (Zhu et al. 2017, sec. 7.1). least_squares_discriminator_loss is already
# 0.5 E[(D(x)-1)^2] + 0.5 E[D(G(z))^2], so it must not be halved a second time.
LOSSES_ALREADY_HALVED = frozenset({"least_squares"})
DOMAINS = ("A", "B")
OTHER = {"A": "B", "B": "A"}


class CycleGAN(L.LightningModule):
    """Unpaired image-to-image translation with cycle-consistency and identity losses."""

    def __init__(
        self,
        generator_ab: nn.Module,
        generator_ba: nn.Module,
        discriminator_a: nn.Module,
        discriminator_b: nn.Module,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        loss: str = "least_squares",
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        gradient_clip_val: float | None = None,
        feature_extractor: Callable[[], FeatureExtractor] | FeatureExtractor | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        networks = ["generator_ab", "generator_ba", "discriminator_a", "discriminator_b"]
        # logger=False: the run logs its whole config once (run.log_run_config), not these beside it.
        self.save_hyperparameters(ignore=[*networks, "optimizer_g", "optimizer_d", "feature_extractor"], logger=False)
        if lambda_cycle < 0 or lambda_identity < 0:
            raise ValueError(f"lambda_cycle and lambda_identity must be >= 0, got {lambda_cycle} and {lambda_identity}")
        self.discriminator_loss, self.generator_loss = adversarial_loss(loss)
        self.discriminator_scale = 1.0 if loss in LOSSES_ALREADY_HALVED else 0.5
        self.generators = nn.ModuleDict({"A": generator_ab, "B": generator_ba})  # keyed by source
        self.discriminators = nn.ModuleDict({"A": discriminator_a, "B": discriminator_b})
        self.optimizer_g = checked_optimizer_factory("optimizer_g", optimizer_g)
        self.optimizer_d = checked_optimizer_factory("optimizer_d", optimizer_d)
        self.pool_generator = torch.Generator().manual_seed(seed)
        # Pools of past fakes of each domain, one per process (under DDP each rank keeps its own).
        self.pools = {domain: ImagePool(pool_size, self.pool_generator) for domain in DOMAINS}
        # Built now, not at test time, so missing Inception weights stop the run before training.
        self.feature_extractor = build_feature_extractor(feature_extractor)
        self.fid: dict[str, FrechetInceptionDistance] = {}  # per target domain, built at test start
        self.num_classes: int | None = None
        self._warned_identity = False

    # --- the shared interface ---

    @torch.no_grad()
    def translate(self, images: Tensor, source: str = "A") -> Tensor:
        """Translate images in [0, 1] from domain `source` ('A' or 'B') to the other domain."""
        if source not in DOMAINS:
            raise ValueError(f"source must be 'A' or 'B', got {source!r}")
        network = self.generators[source]
        was_training = network.training
        network.eval()
        translated = network(images.to(self.device) * 2 - 1)
        network.train(was_training)
        return to_unit_range(translated)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, images: Tensor | None = None) -> Tensor:
        """n translations A->B in [0, 1]: of `images` if given, else of validation A images.

        CycleGAN has no noise input; "sampling" translates real images drawn with `generator`.
        """
        if images is None:
            images = self.validation_images("A", n, generator)
        return self.translate(images[:n], "A")

    def validation_images(self, domain: str, n: int, generator: torch.Generator | None) -> Tensor:
        """n images of `domain` drawn from the attached datamodule's validation set."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        dataset = getattr(datamodule, "val_set", None)
        if dataset is None:
            raise RuntimeError(
                "CycleGAN.sample needs images to translate: pass images=... or attach a trainer "
                "whose datamodule has a val_set (UnpairedImageDataModule after setup)."
            )
        indices = torch.randint(len(dataset), (n,), generator=generator)
        return torch.stack([dataset[int(index)][domain] for index in indices])

    @torch.no_grad()
    def translation_grid_rows(self, real_a: Tensor, real_b: Tensor) -> list[Tensor]:
        """Rows for a grid, all in [0, 1]: real A, fake B, rec A, real B, fake A, rec B."""
        fake_b = self.translate(real_a, "A")
        fake_a = self.translate(real_b, "B")
        rec_a, rec_b = self.translate(fake_b, "B"), self.translate(fake_a, "A")
        rows = [real_a.to(self.device), fake_b, rec_a, real_b.to(self.device), fake_a, rec_b]
        channels = max(row.shape[1] for row in rows)
        # Grayscale rows are repeated to RGB when the two domains differ in channels.
        return [row.expand(-1, channels, -1, -1) for row in rows]

    # --- training ---

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real = {domain: batch[domain] * 2 - 1 for domain in DOMAINS}
        optimizer_g, optimizer_d = self.optimizers()
        fakes, parts = self.generator_step(real, optimizer_g)
        parts |= self.discriminator_step(real, fakes, optimizer_d)
        shown = {"g_loss", "d_A_loss", "d_B_loss"}  # the progress bar gets the totals only
        self.log_dict({f"train/{name}": value for name, value in parts.items() if name in shown}, prog_bar=True)
        self.log_dict({f"train/{name}": value for name, value in parts.items() if name not in shown})

    def generator_step(self, real: dict[str, Tensor], optimizer: Any) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Adversarial + cycle + identity loss of both generators, with discriminators frozen."""
        with self.toggled_optimizer(optimizer):
            fakes, parts = self.generator_losses(real)
            self.optimize(parts["g_loss"], "generator loss", optimizer)
        return fakes, {name: value.detach() for name, value in parts.items()}

    def generator_losses(self, real: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Fakes keyed by their domain, and the named generator loss parts (total: g_loss)."""
        hp = self.hparams
        fakes, parts = {}, {}
        total = torch.zeros((), device=self.device)
        for source in DOMAINS:
            target = OTHER[source]
            fake = self.generators[source](real[source])
            reconstructed = self.generators[target](fake)
            adversarial = self.generator_loss(self.discriminators[target](fake))
            cycle = cycle_consistency_loss(real[source], reconstructed)
            fakes[target] = fake
            parts[f"g_adversarial_{source}_to_{target}"] = adversarial
            parts[f"cycle_{source}_l1"] = cycle
            total = total + adversarial + hp.lambda_cycle * cycle
            if self.identity_applies(real):
                # G_{source->target} fed a target image should leave it unchanged.
                same = identity_loss(real[target], self.generators[source](real[target]))
                parts[f"identity_{target}_l1"] = same
                total = total + hp.lambda_cycle * hp.lambda_identity * same
        parts["g_loss"] = total
        return fakes, parts

    def identity_applies(self, real: dict[str, Tensor]) -> bool:
        """Identity loss is on when weighted and both domains have the same channel count."""
        if self.hparams.lambda_identity == 0:
            return False
        if real["A"].shape[1] == real["B"].shape[1]:
            return True
        if not self._warned_identity:
            rank_zero_warn(
                f"Identity loss skipped: domain A has {real['A'].shape[1]} channel(s), B has "
                f"{real['B'].shape[1]}. Set model.lambda_identity=0 to silence this."
            )
            self._warned_identity = True
        return False

    def discriminator_step(
        self, real: dict[str, Tensor], fakes: dict[str, Tensor], optimizer: Any
    ) -> dict[str, Tensor]:
        """Each discriminator: real images of its domain against pooled past fakes."""
        parts = {}
        with self.toggled_optimizer(optimizer):
            total = torch.zeros((), device=self.device)
            for domain in DOMAINS:
                pooled = self.pools[domain].query(fakes[domain])
                discriminator = self.discriminators[domain]
                loss = self.discriminator_scale * self.discriminator_loss(
                    discriminator(real[domain]), discriminator(pooled)
                )
                parts[f"d_{domain}_loss"] = loss.detach()
                total = total + loss
            self.optimize(total, "discriminator loss", optimizer)
        return parts

    def optimize(self, loss: Tensor, name: str, optimizer: Any) -> None:
        check_finite(name, loss, self.global_step)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()  # clips in on_before_optimizer_step

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Lightning calls this inside optimizer.step(), after 16-mixed AMP has unscaled the
        # gradients: clipping before step() would clip gradients still multiplied by the loss scale.
        if self.hparams.gradient_clip_val:
            self.clip_gradients(optimizer, self.hparams.gradient_clip_val, gradient_clip_algorithm="norm")

    def on_train_epoch_end(self) -> None:
        # Manual optimization: Lightning leaves the schedulers to us, stepped once per epoch.
        # LearningRateMonitor (conf/callbacks/default.yaml) logs the rate each epoch runs at.
        for scheduler in self.lr_schedulers():
            scheduler.step()

    @property
    def schedule(self) -> tuple[int, int]:
        return self.hparams.n_epochs, self.hparams.n_epochs_decay

    # --- evaluation ---

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real = {domain: batch[domain] * 2 - 1 for domain in DOMAINS}
        _, parts = self.generator_losses(real)
        cycle = (parts["cycle_A_l1"] + parts["cycle_B_l1"]) / 2
        self.log("val/cycle_l1", cycle, sync_dist=True, prog_bar=True)
        self.log_dict({f"val/{name}": value for name, value in parts.items()}, sync_dist=True)

    def on_test_start(self) -> None:
        self.translations_dir = Path(self.trainer.default_root_dir) / "translations"
        self.fid = {}
        if self.feature_extractor is not None:
            # Kept out of the module's children, so the checkpoint holds no feature network.
            self.fid = {
                domain: FrechetInceptionDistance(self.feature_extractor.features).to(self.device) for domain in DOMAINS
            }

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        """Translate one domain's test images, write them to disk and feed FID."""
        source = "A" if "A" in batch else "B"
        target = OTHER[source]
        real = batch[source]
        fake = self.translate(real, source)
        self.write_translations(source, batch["name"], real, fake)
        if self.fid:
            # These fakes are domain `target` images; these reals are the reals of domain `source`.
            network_input = self.feature_extractor.network_input
            self.fid[target].update(network_input(fake.to(self.device)), real=False)
            self.fid[source].update(network_input(real.to(self.device)), real=True)

    def write_translations(self, source: str, names: list[str], real: Tensor, fake: Tensor) -> None:
        folder = self.translations_dir / f"{source}_to_{OTHER[source]}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, real_image, fake_image in zip(names, real, fake, strict=True):
            save_image(real_image, folder / f"{name}_real.png")
            save_image(fake_image, folder / f"{name}_fake.png")

    def on_test_epoch_end(self) -> None:
        for target, fid in self.fid.items():
            source = OTHER[target]
            self.log(f"test/fid_{source}_to_{target}", fid.compute())
        self.trainer.strategy.barrier()
        if self.trainer.is_global_zero:
            write_index_page(self.translations_dir)

    # --- setup and state ---

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[Any]]:
        optimizer_g = self.optimizer_g(self.generators.parameters())
        optimizer_d = self.optimizer_d(self.discriminators.parameters())
        factor = functools.partial(
            linear_decay_factor, n_epochs=self.hparams.n_epochs, n_epochs_decay=self.hparams.n_epochs_decay
        )
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (optimizer_g, optimizer_d)]
        return [optimizer_g, optimizer_d], schedulers

    def on_fit_start(self) -> None:
        planned = sum(self.schedule)
        epoch_bound = not self.trainer.fast_dev_run and self.trainer.max_steps == -1
        if epoch_bound and self.trainer.max_epochs not in (None, -1, planned):
            rank_zero_warn(
                f"trainer.max_epochs={self.trainer.max_epochs} but the learning-rate schedule spans "
                f"model.n_epochs + model.n_epochs_decay = {planned} epochs; the rate will not "
                "decay to zero at the end of training."
            )

    def setup(self, stage: str) -> None:
        # Each DDP rank must draw its own pool decisions.
        self.pool_generator.manual_seed(self.hparams.seed + self.global_rank)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The pools' contents are not saved (as in the reference); a resumed run refills them.
        checkpoint["pool_generator_state"] = self.pool_generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "pool_generator_state" in checkpoint and self.global_rank == 0:
            self.pool_generator.set_state(checkpoint["pool_generator_state"])


def build_feature_extractor(
    factory: Callable[[], FeatureExtractor] | FeatureExtractor | None,
) -> FeatureExtractor | None:
    """The FID feature extractor from a config factory (`_partial_: true`), or as given."""
    if factory is None or isinstance(factory, FeatureExtractor):
        return factory
    try:
        return factory()
    except InceptionUnavailableError as error:
        raise InceptionUnavailableError(
            f"{error} For CycleGAN the setting is model.feature_extractor.weights_path=<file>, "
            "or model.feature_extractor=null to skip the test FID."
        ) from error


def to_unit_range(images: Tensor) -> Tensor:
    """Generator output in [-1, 1] as float images in [0, 1]."""
    return ((images.float() + 1) / 2).clamp(0, 1)


def write_index_page(folder: Path) -> Path:
    """An index.html of input/output pairs for every translated test image, per direction."""
    sections = []
    for direction in sorted(p for p in folder.iterdir() if p.is_dir()):
        rows = []
        for real in sorted(direction.glob("*_real.png")):
            name = real.name.removesuffix("_real.png")
            fake = f"{direction.name}/{name}_fake.png"
            rows.append(
                f"<tr><td>{html.escape(name)}</td>"
                f'<td><img src="{html.escape(f"{direction.name}/{real.name}")}"></td>'
                f'<td><img src="{html.escape(fake)}"></td></tr>'
            )
        sections.append(
            f"<h2>{html.escape(direction.name)} ({len(rows)} images)</h2>\n"
            "<table><tr><th>name</th><th>input</th><th>output</th></tr>\n" + "\n".join(rows) + "\n</table>"
        )
    page = folder / "index.html"
    page.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>CycleGAN test translations"
        "</title></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
    return page

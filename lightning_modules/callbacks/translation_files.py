"""CycleGAN test output on disk: every translated test image beside its input, and an index page.

Files: `<run>/translations/{A_to_B,B_to_A}/<name>_real.png` and `<name>_fake.png`, and
`<run>/translations/index.html` listing them per direction. The module's `test_step` returns
`{"source": <domain>, "translated": <images in [0, 1]>}`; the batch carries the inputs and names.
"""

import html
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torchvision.utils import save_image

from datamodules.unpaired import DOMAINS


class TranslationFiles(Callback):
    """Writes each test translation as PNGs (every rank its own batches) and, on rank 0, the index page."""

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.folder = Path(trainer.default_root_dir) / "translations"

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        source = outputs["source"]
        write_translations(self.folder, source, batch["name"], batch[source], outputs["translated"])

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.strategy.barrier()  # every rank's files are written before rank 0 indexes them
        if trainer.is_global_zero:
            write_index_page(self.folder)


def write_translations(folder: Path, source: str, names: list[str], real: Tensor, fake: Tensor) -> None:
    """`<name>_real.png` and `<name>_fake.png` for each image translated from domain `source`."""
    target = next(domain for domain in DOMAINS if domain != source)
    folder = folder / f"{source}_to_{target}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, real_image, fake_image in zip(names, real, fake, strict=True):
        save_image(real_image, folder / f"{name}_real.png")
        save_image(fake_image, folder / f"{name}_fake.png")


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

"""One folder per run: two runs started in the same second never share `outputs/<task>/<date_time>/`.

Hydra names a run's folder after the second it started, and two runs of that second wrote into the
same folder (one's checkpoint gone, the config of the other). `UniqueRunFolder`, a Hydra callback
(conf/hydra/default.yaml), claims the folder with `os.mkdir`, which exactly one process can win,
and moves the loser to `<date_time>_1`, `_2`, ... before Hydra writes anything there.
"""

import shutil
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, read_write

# The folder this process claimed, so a failed start can remove it knowing no other run owns it.
claimed_folder: Path | None = None


def claim_run_folder(base: str | Path) -> Path:
    """Create `base`, or the first free `base_1`, `base_2`, ...; atomic across processes."""
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(10_000):
        folder = base if attempt == 0 else base.with_name(f"{base.name}_{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"No free run folder next to {base} after 10000 tries; clear {base.parent}")


def names_run_folder(config: DictConfig) -> bool:
    """Whether the user chose the folder (`hydra.run.dir=...`, e.g. to resume into it): kept as given."""
    return any(override.split("=", 1)[0].lstrip("+") == "hydra.run.dir" for override in config.hydra.overrides.hydra)


class UniqueRunFolder(Callback):
    """Gives a single run (not a sweep, whose jobs have numbered subfolders) a folder of its own."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        global claimed_folder
        if names_run_folder(config):
            return
        claimed_folder = claim_run_folder(str(config.hydra.run.dir))
        with read_write(config.hydra.run):
            config.hydra.run.dir = str(claimed_folder)


def remove_if_unused(folder: str | Path) -> bool:
    """Remove this process's run folder when a start-up failure left in it only Hydra's config and logs.

    Nothing else reads such a folder, and `make compare` would list it as a run without results.
    """
    folder = Path(folder).resolve()
    if claimed_folder is None or folder != claimed_folder.resolve() or not folder.is_dir():
        return False
    if any(entry.name != ".hydra" and entry.suffix != ".log" for entry in folder.iterdir()):
        return False
    shutil.rmtree(folder)
    return True

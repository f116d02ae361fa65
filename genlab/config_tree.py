"""The composed config as a rich tree: printed once when a run starts and saved beside it.

Modelled on lightning-hydra-template's `print_config_tree`: one branch per config group, the
groups a user changes most first, values resolved (so paths and interpolations show what runs).
"""

from pathlib import Path

import rich.syntax
import rich.tree
import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.console import Console

# Shown first, in this order; every other top-level key follows in config order.
FIRST_GROUPS = ("data", "model", "trainer", "callbacks", "metrics", "logger", "paths")


def config_tree(cfg: DictConfig) -> rich.tree.Tree:
    """A tree with one branch per top-level key, each holding that key's YAML."""
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    order = [key for key in FIRST_GROUPS if key in cfg] + [key for key in cfg if key not in FIRST_GROUPS]
    for key in order:
        branch = tree.add(str(key), style="bold", guide_style="dim")
        value = cfg[key]
        if isinstance(value, DictConfig | ListConfig):
            text = OmegaConf.to_yaml(value, resolve=True)
        else:
            text = yaml.safe_dump(value).removesuffix("...\n")  # null, true, 42: as YAML writes them
        branch.add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    return tree


def print_config_tree(cfg: DictConfig, save_to: Path | None = None) -> None:
    """Print the tree to the terminal and, when `save_to` is given, write it there as plain text."""
    tree = config_tree(cfg)
    Console().print(tree)
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        with save_to.open("w") as file:
            Console(file=file, width=120, no_color=True, color_system=None).print(tree)

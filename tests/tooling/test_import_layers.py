"""Imports go downward only: every module under foundation/, datamodules/, lightning_modules/ and genlab/
imports project modules of its own layer or of lower layers (docs/ARCHITECTURE.md draws them)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Lowest first. A module belongs to the layer of its longest matching prefix.
LAYERS = (
    ("foundation",),
    ("datamodules",),
    (
        "lightning_modules.interface",
        "lightning_modules.objectives",
        "lightning_modules.networks",
        "lightning_modules.samplers",
        "lightning_modules.training",
    ),
    ("lightning_modules.metrics",),
    ("lightning_modules.callbacks",),
    ("lightning_modules",),  # the LightningModules of the families
    ("genlab",),
)
PACKAGES = ("foundation", "datamodules", "lightning_modules", "genlab")


def layer_of(module: str) -> int | None:
    """Index in LAYERS of `module`, or None for a module outside the project (torch, lightning, ...)."""
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    return max(matches)[1] if matches else None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function; `from a import b` counts as `a.b`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}: relative import; write the absolute module path")
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def project_modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_layer_of_ranks_a_family_module_above_its_pieces() -> None:
    assert layer_of("lightning_modules.gan") > layer_of("lightning_modules.callbacks.image_grids")
    assert layer_of("lightning_modules.metrics.caches") > layer_of("foundation.atomic_files")
    assert layer_of("torch.nn") is None


@pytest.mark.parametrize("path", project_modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_go_downward_only(path: Path) -> None:
    own = layer_of(module_name(path))
    upward = sorted(name for name in imported_modules(path) if (layer := layer_of(name)) is not None and layer > own)
    assert not upward, f"{path.relative_to(ROOT)} (layer {own}) imports a higher layer: {', '.join(upward)}"

"""Repository tooling: `make clean` deletes outputs and caches only; pre-commit runs the venv's ruff."""

import shutil
import subprocess
from importlib.metadata import version

import yaml

from tests.helpers.config import ROOT


def test_make_clean_deletes_outputs_and_caches_and_keeps_code_and_data(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for folder in ("outputs/dcgan/run", ".cache/feature_classifiers", "wandb", "pkg/__pycache__", "data/MNIST", "conf"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "file").write_text("x")
    result = subprocess.run(
        ["make", "clean"], cwd=tmp_path, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert "Deleting: outputs wandb .cache" in result.stdout
    remaining = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("file")}
    assert remaining == {"data/MNIST/file", "conf/file"}


def test_pre_commit_runs_ruff_at_the_version_the_venv_installs():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (repo,) = config["repos"]
    assert repo["repo"] == "https://github.com/astral-sh/ruff-pre-commit"
    assert repo["rev"] == f"v{version('ruff')}"
    assert {hook["id"] for hook in repo["hooks"]} == {"ruff-check", "ruff-format"}

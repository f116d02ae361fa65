"""Every notebooks/*.ipynb runs top to bottom on the real data and passes its own asserts.

Each notebook trains small models with the project's code and asserts its headline number, so a
change that breaks an application fails here. The kernel starts in notebooks/ (as in Jupyter);
the notebooks find the repository root themselves, read DATA_ROOT from the environment and write
only to temporary folders, which TMPDIR puts under pytest's tmp_path.
"""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.helpers.config import ROOT, requires_mnist

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIMEOUT_PER_CELL_S = 600


def execute(path: Path, tmp_path: Path, **environment: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=TIMEOUT_PER_CELL_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    # One math thread per kernel unless the caller chose: on the shared 2-core machine, a kernel with
    # two threads competing with other jobs took ~10 min for a notebook that takes ~50 s with one.
    env = {"OMP_NUM_THREADS": "1", **os.environ, "TMPDIR": str(tmp_path), **environment}
    client.execute(env=env)
    return notebook


def test_notebooks_are_stored_without_outputs():
    assert NOTEBOOKS, "no notebooks found in notebooks/"
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        with_outputs = [i for i, cell in enumerate(cells) if cell.cell_type == "code" and cell.outputs]
        assert not with_outputs, f"{path.name} is stored with outputs in cells {with_outputs}; clear them"


@pytest.mark.slow
@pytest.mark.notebook
@requires_mnist
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path):
    execute(path, tmp_path)


@pytest.mark.slow
@pytest.mark.notebook
def test_a_missing_dataset_stops_a_notebook_with_the_training_message(tmp_path: Path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    with pytest.raises(CellExecutionError) as error:
        execute(ROOT / "notebooks" / "anomaly_detection.ipynb", tmp_path, DATA_ROOT=str(empty))
    assert error.value.ename == "DatasetNotFoundError"
    assert f"mnist not found under {empty}/MNIST/raw" in error.value.evalue

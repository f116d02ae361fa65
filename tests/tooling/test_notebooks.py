"""Every notebooks/*.ipynb runs top to bottom on the real data and passes its own asserts.

Each notebook trains small models with the project's code and asserts its headline number, so a
change that breaks an application fails here. The kernel starts in notebooks/ (as in Jupyter);
the notebooks find the repository root themselves, read DATA_ROOT from the environment and write
only to temporary folders, which TMPDIR puts under pytest's tmp_path.

Each kernel computes on one thread, so the selected notebooks run side by side, one per CPU core
(longest first), while their tests wait for them in order.
"""

import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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


# Longest first (measured), so the cores finish together; a notebook not listed here starts first.
LONGEST_FIRST = ["augmentation", "latent_tour", "anomaly_detection", "imputation", "compare_runs"]


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.fixture(scope="module")
def notebook_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The selected notebooks, started side by side (one single-threaded kernel per core); path -> Future."""
    selected = [
        item.callspec.params["path"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_notebook_runs_top_to_bottom"
    ]
    selected.sort(key=lambda path: LONGEST_FIRST.index(path.stem) if path.stem in LONGEST_FIRST else -1)
    with ThreadPoolExecutor(max_workers=max(1, min(available_cores(), len(selected)))) as pool:
        runs: dict[Path, Future] = {
            path: pool.submit(execute, path, tmp_path_factory.mktemp(path.stem)) for path in selected
        }
        yield runs
        for run in runs.values():
            run.cancel()  # after a failure with -x: do not start the notebooks not yet begun


@pytest.mark.slow
@pytest.mark.notebook
@requires_mnist
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_top_to_bottom(path: Path, notebook_runs: dict[Path, Future]):
    notebook_runs[path].result()  # raises the notebook's own error (CellExecutionError) if a cell failed


@pytest.mark.slow
@pytest.mark.notebook
def test_a_missing_dataset_stops_a_notebook_with_the_training_message(tmp_path: Path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    with pytest.raises(CellExecutionError) as error:
        execute(ROOT / "notebooks" / "anomaly_detection.ipynb", tmp_path, DATA_ROOT=str(empty))
    assert error.value.ename == "DatasetNotFoundError"
    assert f"mnist not found under {empty}/MNIST/raw" in error.value.evalue

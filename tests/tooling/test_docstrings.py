"""Every Python file of the repository opens with a docstring saying what it is for (an empty
`__init__.py`, which only marks a package, excepted)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("foundation", "datamodules", "lightning_modules", "genlab", "tests", "benchmarks")


def python_files() -> list[Path]:
    return sorted([*ROOT.glob("*.py"), *(path for folder in FOLDERS for path in (ROOT / folder).rglob("*.py"))])


def test_every_python_file_opens_with_a_docstring() -> None:
    files = python_files()
    assert len(files) > 100  # the search found the repository
    missing = [
        str(path.relative_to(ROOT))
        for path in files
        if path.read_text().strip() and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert not missing, f"files without an opening docstring: {', '.join(missing)}"

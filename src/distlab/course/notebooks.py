"""Keep committed notebooks clean: no outputs, no execution counts, minimal metadata.

Command line::

    python -m distlab.course.notebooks clean lessons solutions exercises quizzes
    python -m distlab.course.notebooks check lessons solutions exercises quizzes

``clean`` rewrites notebooks in place; ``check`` lists every problem and exits 1 if
there is one. Both accept notebook files and folders (searched recursively,
``.ipynb_checkpoints`` skipped).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import nbformat

__all__ = ["KERNELSPEC", "clean_notebook", "find_notebooks", "notebook_problems"]

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# Notebook-level metadata worth keeping; everything else (widget state, toc, editor
# settings) is noise in a diff.
_KEEP_NB_METADATA = {"kernelspec", "language_info"}
# Cell-level metadata Jupyter and nbgrader need; "tags" drive lesson tooling.
_KEEP_CELL_METADATA = {"nbgrader", "tags", "deletable", "editable"}
_LANGUAGE_INFO = {"name": "python"}


def clean_notebook(nb: Any) -> Any:
    """Return a clean copy of ``nb``: no outputs, no execution counts, minimal metadata.

    nbgrader's cell metadata (grade ids, points, locks) is kept, so cleaning a
    solution or a released exercise never changes how it is graded.

    Args:
        nb: a notebook as read by ``nbformat.read``.

    Returns:
        A new notebook node; ``nb`` is not modified.
    """
    out = copy.deepcopy(nb)
    out.metadata = nbformat.from_dict(
        {k: v for k, v in out.metadata.items() if k in _KEEP_NB_METADATA}
    )
    out.metadata["kernelspec"] = dict(KERNELSPEC)
    out.metadata["language_info"] = dict(_LANGUAGE_INFO)
    for cell in out.cells:
        cell.metadata = nbformat.from_dict(
            {k: v for k, v in cell.metadata.items() if k in _KEEP_CELL_METADATA}
        )
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            if not cell.get("attachments"):
                cell.pop("attachments", None)
    return out


def notebook_problems(path: Path) -> list[str]:
    """List what keeps the notebook at ``path`` from being committed as is.

    Returns:
        Human-readable problems, each naming the file (and cell); empty when clean.
    """
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # any parse error is a problem to report, not a crash
        return [f"{path}: not a readable notebook ({exc})"]
    problems = []
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        problems.append(f"{path}: invalid nbformat ({exc.message})")
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.get("outputs"):
            problems.append(f"{path}: cell {index} has outputs")
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            problems.append(f"{path}: cell {index} has an execution count")
    if clean_notebook(nb) != nb:
        problems.append(f"{path}: metadata differs from the clean form (run make clean-notebooks)")
    return problems


def find_notebooks(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Yield every notebook named in ``paths`` or found under the folders among them."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for found in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" not in found.parts:
                    yield found
        elif path.suffix == ".ipynb":
            yield path
        else:
            raise FileNotFoundError(f"{path}: not a notebook or a folder")


def main(argv: list[str] | None = None) -> int:
    """Run the ``clean`` or ``check`` command; return the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m distlab.course.notebooks", description=__doc__)
    parser.add_argument("command", choices=["clean", "check"])
    parser.add_argument("paths", nargs="+", help="notebooks or folders")
    args = parser.parse_args(argv)
    try:
        notebooks = list(find_notebooks(args.paths))
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "clean":
        for path in notebooks:
            nb = nbformat.read(path, as_version=4)
            cleaned = clean_notebook(nb)
            if cleaned != nb:
                nbformat.write(cleaned, path)
                print(f"cleaned {path}")
        return 0
    problems = [p for path in notebooks for p in notebook_problems(path)]
    for problem in problems:
        print(problem)
    print(f"{len(notebooks)} notebooks checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

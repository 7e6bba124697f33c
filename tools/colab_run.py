"""Run Colab notebooks outside Colab, top to bottom, as a reader would: in Colab's runtime image (the ``colab``
GitHub workflow) or in any Python environment with a Jupyter kernel (the tests).

Usage: ``python tools/colab_run.py [--install TARGET] [--kernel NAME] [--timeout SECONDS] NOTEBOOK...``

- ``--install TARGET``: what the notebook's first (set-up) cell installs instead of its git URL, e.g. ``./code``
  (a local path is made absolute, since the kernel runs elsewhere).
- ``--kernel NAME``: the Jupyter kernel to run in (default ``python3``).
- ``--timeout SECONDS``: the longest one cell may run (nbclient's per-cell timeout).

Each notebook runs in a fresh kernel whose working folder is an empty temporary folder, like Colab's ``/content``,
so a notebook cannot lean on files beside it. One line per notebook: its name, seconds, and number of error
outputs; the exit status is 1 when any notebook raised or has an error output, with the first error's name and
value printed. Only nbformat, nbclient and the standard library are imported: Colab's image has no more.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

#: The quoted install target of the set-up cell's ``%pip install ... "<target>"`` line.
INSTALL_TARGET = re.compile(r'(?m)^(?P<command>\s*[%!]pip install\b[^"\n]*)"(?P<target>[^"]+)"')
DEFAULT_TIMEOUT_S = 1800


@dataclass
class RunResult:
    """One notebook's run: how long it took and what went wrong."""

    name: str
    seconds: float
    notebook: nbformat.NotebookNode
    errors: list[dict] = field(default_factory=list)  #: the error outputs, in cell order
    failure: str = ""  #: why the run stopped early (a kernel that died, a cell that timed out), if it did

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failure

    def summary(self) -> str:
        """E.g. ``numpy-nn.ipynb  21.4 s  0 errors``, and the first error's name and value on failure."""
        line = f"{self.name}  {self.seconds:.1f} s  {len(self.errors)} error(s)"
        if self.errors:
            line += f"\n  first error: {self.errors[0].get('ename')}: {self.errors[0].get('evalue')}"
        if self.failure:
            line += f"\n  stopped: {self.failure}"
        return line


def with_install_target(notebook: nbformat.NotebookNode, target: str) -> nbformat.NotebookNode:
    """``notebook`` with the install target of its first (set-up) cell replaced by ``target``.

    Raises:
        ValueError: if the first cell has no ``%pip install ... "<target>"`` line.
    """
    setup = notebook.cells[0] if notebook.cells else None
    if setup is None or setup.cell_type != "code" or not INSTALL_TARGET.search(setup.source):
        raise ValueError('the first cell has no %pip install "<target>" line to replace')
    if Path(target).exists():
        target = str(Path(target).resolve())
    setup.source = INSTALL_TARGET.sub(lambda match: f'{match["command"]}"{target}"', setup.source, count=1)
    return notebook


def error_outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    """Every error output of ``notebook``, in cell order."""
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if output.get("output_type") == "error"]


def execute(notebook: nbformat.NotebookNode, name: str, kernel_name: str = "python3",
            timeout: int = DEFAULT_TIMEOUT_S) -> RunResult:
    """Execute ``notebook`` in place, top to bottom, in a fresh ``kernel_name`` kernel whose working folder is
    a new empty folder; it stops at the first cell that raises."""
    start, failure = time.monotonic(), ""
    with tempfile.TemporaryDirectory(prefix="colab-run-") as folder:
        client = NotebookClient(notebook, timeout=timeout, kernel_name=kernel_name,
                                resources={"metadata": {"path": folder}})
        try:
            client.execute()
        except CellExecutionError:
            pass  # the error output is in the cell
        except Exception as error:  # noqa: BLE001 - a kernel that died or never started, a cell that timed out
            failure = f"{type(error).__name__}: {error}".strip()
    return RunResult(name, time.monotonic() - start, notebook, error_outputs(notebook), failure)


def run_notebook(path: Path, install_target: str | None = None, kernel_name: str = "python3",
                 timeout: int = DEFAULT_TIMEOUT_S) -> RunResult:
    """Read the notebook at ``path``, point its set-up cell at ``install_target`` when given, and execute it."""
    notebook = nbformat.read(path, as_version=4)
    if install_target:
        notebook = with_install_target(notebook, install_target)
    return execute(notebook, Path(path).name, kernel_name, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    parser.add_argument("--install", metavar="TARGET", help="what the set-up cell installs, e.g. ./code")
    parser.add_argument("--kernel", default="python3", metavar="NAME", help="Jupyter kernel (default python3)")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help=f"the longest one cell may run (default {DEFAULT_TIMEOUT_S})")
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks:
        try:
            result = run_notebook(path, args.install, args.kernel, args.timeout)
        except (OSError, ValueError) as error:  # unreadable, or no set-up cell to point at TARGET
            print(f"{path.name}  not run: {error}", flush=True)
            failed = True
            continue
        print(result.summary(), flush=True)
        failed |= not result.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Offline text corpora: the docstrings of Python's own standard library.

Real English prose that ships with every Python, so the ``quick`` profile's text chapters need no download. The
docstrings are read from the standard library's *source files* with :mod:`ast` — never by importing the modules,
which has side effects (one of them opens a web browser).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
import sys
import sysconfig
from pathlib import Path

import numpy as np

#: Folders of the standard library that are not its public modules (tests, the IDE, bundled third-party code).
EXCLUDED_PARTS = frozenset(
    {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "__pycache__", "ensurepip",
     "turtledemo", "pydoc_data", "config-3.11-x86_64-linux-gnu"}
)


@dataclasses.dataclass(frozen=True)
class Docstring:
    """One docstring: the dotted module it belongs to, its top-level package, the object's name, the text."""

    module: str
    package: str
    name: str
    text: str


FIELDS = tuple(field.name for field in dataclasses.fields(Docstring))

def stdlib_root() -> Path:
    """The folder of the running interpreter's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _docstrings_of_source(source: str) -> list[tuple[str, str]]:
    """(object name, docstring) for the module, every class and every function of ``source``."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            text = ast.get_docstring(node, clean=True)
            if text:
                found.append((getattr(node, "name", "<module>"), text))
    return found


def read_docstrings(root: Path, min_chars: int = 40) -> tuple[Docstring, ...]:
    """Every docstring of at least ``min_chars`` characters in the Python files under ``root``, in a fixed order.

    Files in test, IDE and third-party folders are skipped, and so are files that do not parse.

    Raises:
        FileNotFoundError: if ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"library folder not found: {root}")
    documents = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if EXCLUDED_PARTS.intersection(relative.parts) or any(p.startswith(("test_", "_test")) for p in relative.parts):
            continue
        try:
            pairs = _docstrings_of_source(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a few files are templates or use another encoding
        module = _module_name(path, root)
        package = module.split(".")[0].strip("_") or module
        documents.extend(Docstring(module, package, name, text) for name, text in pairs if len(text) >= min_chars)
    return tuple(documents)


@functools.lru_cache(maxsize=4)
def stdlib_docstrings(min_chars: int = 40) -> tuple[Docstring, ...]:
    """The standard library's docstrings (see :func:`read_docstrings`), cached on disk: parsing takes ~15 s."""
    from mlbook.cache import load_or_compute_arrays

    def compute() -> dict[str, np.ndarray]:
        documents = read_docstrings(stdlib_root(), min_chars)
        return {field: np.array([getattr(d, field) for d in documents], dtype=str) for field in FIELDS}

    config = {"min_chars": min_chars, "python": sys.version, "stdlib": str(stdlib_root())}
    arrays, _ = load_or_compute_arrays("stdlib-docstrings", config, compute, profile="quick")
    return tuple(Docstring(*values) for values in zip(*(arrays[field].tolist() for field in FIELDS)))


def to_text8(text: str) -> str:
    """Lower-case ``text`` and keep only a–z and single spaces, as in the text8 corpus."""
    return re.sub(r" +", " ", re.sub(r"[^a-z]+", " ", text.lower())).strip()


def stdlib_text8(min_chars: int = 40) -> str:
    """All standard-library docstrings as one text8-style string (a–z and spaces), in a fixed order."""
    return " ".join(to_text8(doc.text) for doc in stdlib_docstrings(min_chars))

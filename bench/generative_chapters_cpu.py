"""CPU and wall time of executing the autoencoder and VAE chapters, cold (empty weights cache) and warm (cached).

On a shared machine wall-clock time depends on the other jobs; CPU seconds (user + sys of the kernel process) are
the steadier measure. Usage, from the repository root:

    .venv/bin/python bench/generative_chapters_cpu.py [book/generative/autoencoders.md ...]
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHAPTERS = ["book/generative/autoencoders.md", "book/generative/vae.md"]


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute(chapter: Path) -> tuple[float, float]:
    """Run every cell of ``chapter`` in a fresh kernel; return (CPU seconds, wall seconds)."""
    notebook = jupytext.read(chapter)
    cpu_before, wall_before = children_cpu_seconds(), time.perf_counter()
    client = NotebookClient(notebook, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(chapter.parent)}})
    client.execute()
    return children_cpu_seconds() - cpu_before, time.perf_counter() - wall_before


def main(chapters: list[str]) -> None:
    os.environ.setdefault("MLBOOK_PROFILE", "quick")
    os.environ.setdefault("MLBOOK_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["MLBOOK_CACHE"] = cache
        for label in ("cold", "warm"):
            for chapter in chapters:
                cpu, wall = execute(ROOT / chapter)
                print(f"{label:4s} {chapter:36s} CPU {cpu:6.1f} s   wall {wall:6.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT_CHAPTERS)

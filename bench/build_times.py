"""Build times of the quick book: cold (empty caches), no change, and one chapter's code cell edited.

It copies the tracked files of this checkout to a temporary folder (so your own _build and caches are left
alone), builds there three times and prints each time against its target. Run by hand, from the repository
root, with the book's environment; a cold build takes about ten minutes on 2 cores (``MLBOOK_EXECUTION_WORKERS=1``
measures the one-chapter-at-a-time build for comparison):

    .venv/bin/python bench/build_times.py [book/sequences/genetic-algorithms]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from mlbook_execute import execution_workers  # noqa: E402  (the build's own reading of MLBOOK_EXECUTION_WORKERS)
#: Targets from the developers' guide and issue 10 (seconds, quick profile, 2-core CPU).
TARGETS = {"cold": 600.0, "no change": 30.0, "one chapter edited": None}


def copy_checkout(destination: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def build(book: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(book), "-W"],
                            env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"build failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return elapsed


def edit_first_code_cell(chapter: Path) -> None:
    text = chapter.read_text()
    marker = "```{code-cell} ipython3\n"
    index = text.index(marker) + len(marker)
    chapter.write_text(text[:index] + "# edited by bench/build_times.py\n" + text[index:])


def main() -> None:
    chapter = sys.argv[1] if len(sys.argv) > 1 else "book/sequences/genetic-algorithms"
    with tempfile.TemporaryDirectory(prefix="mlbook-bench-") as folder:
        book = Path(folder) / "book"
        copy_checkout(book)
        env = {**os.environ, "MLBOOK_PROFILE": "quick", "MLBOOK_OFFLINE": "1",
               "MLBOOK_CACHE": str(Path(folder) / "weights"), "MLBOOK_DATA": str(Path(folder) / "data")}
        times = {"cold": build(book, env), "no change": build(book, env)}
        edit_first_code_cell(book / f"{chapter}.md")
        times["one chapter edited"] = build(book, env)
    workers = execution_workers()
    print(f"{'build':20s} {'seconds':>8s} {'target':>7s} {'target / time':>14s}   ({os.cpu_count()} CPUs, "
          f"{workers} chapters executed at a time)")
    for name, seconds in times.items():
        target = TARGETS[name]
        ratio = "" if target is None else f"{target / seconds:14.2f}"
        print(f"{name:20s} {seconds:8.1f} {target or '':>7} {ratio}")
    print(f"(edited: {chapter})")


if __name__ == "__main__":
    main()

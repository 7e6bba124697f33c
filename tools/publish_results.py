"""Ship a build's results with the package: ``mlbook/published/results-<profile>.json``, the bands and values that
:func:`mlbook.compare.compare_with_book` sets a reader's run beside.

Usage: ``python tools/publish_results.py [_build/html/results-quick.json]`` (``make publish-results``), after a
build whose numbers are the book's. The file is outside the execution cache's fingerprint and the weights-cache
key (``tools/mlbook_build.py``, ``mlbook.cache``), so refreshing it re-executes and retrains nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PUBLISHED_DIR = REPO_ROOT / "code/src/mlbook/published"
RESULT_FIELDS = ("chapter", "key", "label", "value", "band", "fmt")


def published_snapshot(report: dict[str, Any]) -> dict[str, Any]:
    """The part of a build's results report that a reader's comparison needs: the profile, the package versions,
    each chapter's device and each headline number with its band and format."""
    return {
        "profile": report["profile"],
        "versions": report["versions"],
        "devices": {chapter["docname"]: chapter.get("device") for chapter in report["chapters"]},
        "results": [{field: result.get(field) for field in RESULT_FIELDS} for result in report["results"]],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="_build/html/results-quick.json", type=Path)
    args = parser.parse_args(argv)
    report = json.loads(args.results.read_text(encoding="utf-8"))
    failing = [r["key"] for r in report["results"] if r.get("status") not in ("ok", "unchecked")]
    if failing:
        print(f"{args.results}: not publishing a build with numbers outside their bands or missing: {failing}")
        return 1
    snapshot = published_snapshot(report)
    target = PUBLISHED_DIR / f"results-{snapshot['profile']}.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {target.relative_to(REPO_ROOT)}: {len(snapshot['results'])} numbers of the {snapshot['profile']} "
          "profile")
    return 0


if __name__ == "__main__":
    sys.exit(main())

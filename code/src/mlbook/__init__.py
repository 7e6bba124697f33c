"""mlbook — the tested code behind ML Notebook, an executable deep-learning tutorial book.

Importing ``mlbook`` is cheap: TensorFlow is imported only by the modules (and calls) that need it.
"""

from __future__ import annotations

from mlbook.compare import compare_with_book
from mlbook.profiles import PROFILES, current_profile, select
from mlbook.runtime import ChapterContext, setup_chapter
from mlbook.seeding import seed_everything

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "ChapterContext",
    "compare_with_book",
    "current_profile",
    "seed_everything",
    "select",
    "setup_chapter",
    "__version__",
]

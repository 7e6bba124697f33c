"""Sphinx extension (loaded from ``_config.yml``) that ties the execution cache to the profile and the package.

jupyter-cache keys a notebook on its code cells only, so a change to ``mlbook`` (or to the pinned requirements)
would otherwise be served from stale outputs. This extension points myst-nb at one cache folder per profile and
per *fingerprint* of ``code/src/**``, ``code/pyproject.toml`` and ``requirements/*.txt``:

- a change to any of those files gives a new folder, and since the cache path is a Sphinx config value that
  triggers a full re-read, every chapter is executed again;
- switching profiles (``MLBOOK_PROFILE``) uses that profile's own folder, so quick and full outputs never mix;
- older folders of the same profile are deleted.

It serves MathJax from the build itself (the ``django-static-mathjax`` wheel carries MathJax 3), so the maths of
a downloaded or locally built book renders with no network.

It also exposes ``{{ mlbook_profile }}`` and ``{{ mlbook_fingerprint }}`` as MyST substitutions for the build
report page, and lets the ``singlehtml`` builder of the PDF edition (``tools/pdf.py``) render every node the
``html`` builder renders (:func:`inherit_html_handlers`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)

#: Files whose content decides whether cached chapter outputs are still valid (relative to the book root).
FINGERPRINT_GLOBS: tuple[str, ...] = ("code/src/**/*", "code/pyproject.toml", "requirements/*.txt")
CACHE_ROOT_NAME = ".jupyter_cache"
MATHJAX_ENTRY = "tex-mml-chtml.js"
#: What tex-mml-chtml.js loads at run time (fonts, TeX extensions, menu, accessibility); "sre" (speech) is left out.
MATHJAX_PARTS: tuple[str, ...] = (MATHJAX_ENTRY, "input", "output", "ui", "a11y", "adaptors")


def fingerprint(book_root: Path, globs: tuple[str, ...] = FINGERPRINT_GLOBS) -> str:
    """SHA-256 over the relative paths and bytes of the files matched by ``globs`` (caches and bytecode skipped)."""
    digest = hashlib.sha256()
    files = sorted(
        {
            path
            for pattern in globs
            for path in book_root.glob(pattern)
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
            and not any(part.endswith(".egg-info") for part in path.parts)
        }
    )
    for path in files:
        digest.update(path.relative_to(book_root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def execution_cache_dir(outdir: Path, profile: str, book_fingerprint: str) -> Path:
    """The jupyter-cache folder for this profile and fingerprint, beside the HTML output folder."""
    return outdir.parent / CACHE_ROOT_NAME / f"{profile}-{book_fingerprint[:16]}"


def prune_stale_caches(current: Path, profile: str) -> list[Path]:
    """Delete the other cache folders of ``profile`` (made by older package sources); return what was removed."""
    removed = []
    if current.parent.is_dir():
        for sibling in current.parent.glob(f"{profile}-*"):
            if sibling != current and sibling.is_dir():
                shutil.rmtree(sibling, ignore_errors=True)
                removed.append(sibling)
    return removed


def vendored_mathjax_dir() -> Path:
    """The ``es5`` folder of the MathJax 3 copy that the ``django-static-mathjax`` wheel installs."""
    try:
        import mathjax  # the import name of django-static-mathjax
    except ImportError as error:
        raise ConfigError("MathJax is not installed: pip install django-static-mathjax (requirements/book.txt)") from error
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / MATHJAX_ENTRY).is_file():
        raise ConfigError(f"MathJax's {MATHJAX_ENTRY} not found under {es5}")
    return es5


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    """Copy the MathJax files the pages load into ``_static/mathjax`` of the HTML output."""
    if exception is not None or app.builder.format != "html":
        return
    source, target = vendored_mathjax_dir(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def _current_profile() -> str:
    try:
        from mlbook.profiles import current_profile
    except ImportError as error:  # the package is part of the book's environment
        raise ConfigError(f"cannot import mlbook ({error}); install it with `pip install -e ./code`") from error
    try:
        return current_profile()
    except ValueError as error:
        raise ConfigError(str(error)) from error


def on_config_inited(app: Sphinx, config: Config) -> None:
    """Choose the cache folder and the substitutions before the environment compares configs."""
    profile = _current_profile()
    book_fingerprint = fingerprint(Path(app.srcdir))
    cache_dir = execution_cache_dir(Path(app.outdir), profile, book_fingerprint)
    for stale in prune_stale_caches(cache_dir, profile):
        LOGGER.info(f"[mlbook] removed stale execution cache {stale.name}")
    config.nb_execution_cache_path = str(cache_dir)
    substitutions = dict(config.myst_substitutions or {})
    substitutions.update(mlbook_profile=profile, mlbook_fingerprint=book_fingerprint[:16])
    config.myst_substitutions = substitutions
    # TensorFlow's C++ start-up lines (CPU feature notes) go to the kernel's stderr and would become warnings.
    # Level 2 keeps errors. oneDNN stays on: turning it off makes conv training 2-3x slower on CPUs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    vendored_mathjax_dir()  # fail early, with a clear message, if it is missing
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"  # relative: served from _static/ of this build
    LOGGER.info(f"[mlbook] profile={profile} fingerprint={book_fingerprint[:16]} cache={cache_dir}")


def deduplicate_script_files(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    """Drop repeated ``<script>`` entries from a page.

    sphinx-thebe adds its inline ``const THEBE_JS_URL = ...`` script at every reading pass, once with filename
    ``None`` and once with ``""``, which Sphinx keeps as two scripts; the second ``const`` declaration is a
    JavaScript ``SyntaxError`` in the browser console of every page.
    """
    seen: set[str] = set()
    unique = []
    for script in context.get("script_files", []):
        # an inline script's filename is None or "" depending on who added it
        filename = getattr(script, "filename", script) or ""
        key = repr((str(filename), sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    if "script_files" in context:
        context["script_files"] = unique


def inherit_html_handlers(app: Sphinx) -> None:
    """For the ``singlehtml`` builder (``make pdf``), use every node handler registered for ``html``.

    Sphinx looks up the visitors of custom nodes by builder *name* and falls back to the builder's *format* only
    when no extension registered anything for that name. sphinx-exercise registers its nodes for ``singlehtml``
    too, so every handler registered for ``html`` alone (myst-nb's ``HideCodeCellNode``, ...) would be missing
    there and the single-page build would fail. Handlers registered for ``singlehtml`` itself take precedence.
    The ``html`` builder is unaffected.
    """
    if app.builder.name != "singlehtml":
        return
    handlers = app.registry.translation_handlers
    handlers["singlehtml"] = {**handlers.get("html", {}), **handlers.get("singlehtml", {})}


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", inherit_html_handlers)
    # priority < 500 so it runs before extensions that read the config at config-inited
    app.connect("config-inited", on_config_inited, priority=400)
    app.connect("build-finished", copy_mathjax)
    app.connect("html-page-context", deduplicate_script_files, priority=900)  # after others add scripts
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

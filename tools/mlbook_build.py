"""Sphinx extension (loaded from ``_config.yml``) that ties the execution cache to the profile and the package.

jupyter-cache keys a notebook on its code cells only, so a change to ``mlbook`` (or to the pinned requirements)
would otherwise be served from stale outputs. This extension points myst-nb at one cache folder per profile and
per *fingerprint* of ``code/src/**``, ``code/pyproject.toml``, ``requirements/*.txt`` and the runtime
(:func:`runtime_description`: the installed TensorFlow and Keras, whether TensorFlow's CUDA build is installed, and
``MLBOOK_DISTRIBUTE``):

- a change to any of those gives a new folder, and since the cache path is a Sphinx config value that
  triggers a full re-read, every chapter is executed again;
- switching profiles (``MLBOOK_PROFILE``) uses that profile's own folder, so quick and full outputs never mix;
- older folders of the same profile are deleted;
- in the ``full`` profile, a chapter that ran on substitute data is left out of the cache
  (:func:`drop_fallback_runs`), and any chapter missing from the cache is read, so executed, again
  (:func:`reread_uncached_notebooks`).

It serves MathJax from the build itself (the ``django-static-mathjax`` wheel carries MathJax 3), so the maths of
a downloaded or locally built book renders with no network.

It also exposes ``{{ mlbook_profile }}``, ``{{ mlbook_fingerprint }}`` and ``{{ mlbook_runtime }}`` as MyST
substitutions for the build
report page, and lets the ``singlehtml`` builder of the PDF edition (``tools/pdf.py``) render every node the
``html`` builder renders (:func:`inherit_html_handlers`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import nbformat
from docutils import nodes
from packaging.requirements import Requirement
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.errors import ConfigError
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

LOGGER = logging.getLogger(__name__)

#: Files whose content decides whether cached chapter outputs are still valid (relative to the book root).
FINGERPRINT_GLOBS: tuple[str, ...] = ("code/src/**/*", "code/pyproject.toml", "requirements/*.txt")
#: Folders the fingerprint leaves out: the book's published numbers, which the package ships for readers to compare
#: with (tools/publish_results.py) and no chapter reads.
FINGERPRINT_EXCLUDED: tuple[str, ...] = ("code/src/mlbook/published",)
CACHE_ROOT_NAME = ".jupyter_cache"
MATHJAX_ENTRY = "tex-mml-chtml.js"
#: What tex-mml-chtml.js loads at run time (fonts, TeX extensions, menu, accessibility); "sre" (speech) is left out.
MATHJAX_PARTS: tuple[str, ...] = (MATHJAX_ENTRY, "input", "output", "ui", "a11y", "adaptors")
#: TensorFlow's distributions: ``tensorflow`` (with the CUDA build, requirements/gpu.txt) and ``tensorflow-cpu``.
TENSORFLOW_DISTRIBUTIONS: tuple[str, ...] = ("tensorflow", "tensorflow-cpu")
#: TensorFlow's extra that installs NVIDIA's CUDA libraries as wheels (``tensorflow[and-cuda]``).
CUDA_EXTRA = "and-cuda"
#: The line :func:`mlbook.data.announce_fallback` prints when a chapter uses substitute data.
FALLBACK_LINE = re.compile(r"^\[mlbook\.data\] (?P<wanted>.+?) unavailable \(.*\); using .+ instead\.$", re.MULTILINE)
#: The profile whose chapters must run on the real data (``quick`` uses the offline data by design).
REAL_DATA_PROFILE = "full"


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def cuda_libraries(tensorflow_distribution: str) -> dict[str, str]:
    """The installed wheels of TensorFlow's ``and-cuda`` extra (name → version); empty for a CPU build.

    ``pip install tensorflow[and-cuda]`` (requirements/gpu.txt) installs NVIDIA's CUDA and cuDNN libraries as
    wheels, which TensorFlow loads at start-up; their presence is what makes the CUDA build run on a GPU. The
    extra's requirements come from TensorFlow's own metadata, so a new release's list is followed without an edit
    here, and nothing is imported (importing TensorFlow would cost seconds at every build).
    """
    libraries = {}
    try:
        requirements = metadata.requires(tensorflow_distribution) or []
    except metadata.PackageNotFoundError:
        return libraries
    for text in requirements:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or not marker.evaluate({"extra": CUDA_EXTRA}) or marker.evaluate({"extra": ""}):
            continue
        if (version := _installed_version(requirement.name)) is not None:
            libraries[requirement.name] = version
    return libraries


def runtime_description() -> dict[str, str]:
    """What the chapters' outputs depend on beyond the source files: the installed TensorFlow and Keras, the CUDA
    libraries of TensorFlow's CUDA build (``"none"`` on a CPU build) and the ``tf.distribute`` strategy that
    ``MLBOOK_DISTRIBUTE`` chooses. Read from package metadata and the environment, without importing TensorFlow.

    Raises:
        ConfigError: if ``MLBOOK_DISTRIBUTE`` names an unknown strategy, or ``mlbook`` is not installed.
    """
    installed = [(name, version) for name in TENSORFLOW_DISTRIBUTIONS
                 if (version := _installed_version(name)) is not None]
    libraries = {library: version for distribution, _ in installed
                 for library, version in cuda_libraries(distribution).items()}
    return {
        "tensorflow": ", ".join(f"{name} {version}" for name, version in installed) or "not installed",
        "keras": _installed_version("keras") or "not installed",
        "cuda": ", ".join(f"{name} {version}" for name, version in sorted(libraries.items())) or "none",
        "strategy": _mlbook_choice("distribute", "strategy_name"),
    }


def _mlbook_choice(module: str, function: str) -> str:
    """``mlbook.<module>.<function>()``: what an environment variable chooses (the profile, the strategy), with an
    unknown value or a missing package reported as a :class:`ConfigError`."""
    try:
        choose = getattr(importlib.import_module(f"mlbook.{module}"), function)
    except ImportError as error:  # the package is part of the book's environment
        raise ConfigError(f"cannot import mlbook ({error}); install it with `pip install -e ./code`") from error
    try:
        return choose()
    except ValueError as error:
        raise ConfigError(str(error)) from error


def format_runtime(runtime: Mapping[str, str]) -> str:
    """:func:`runtime_description` in one line, for the build report and the log."""
    return "; ".join(f"{name}: {value}" for name, value in runtime.items())


def fingerprint(book_root: Path, globs: tuple[str, ...] = FINGERPRINT_GLOBS,
                runtime: Mapping[str, str] | None = None) -> str:
    """SHA-256 over the relative paths and bytes of the files matched by ``globs`` (caches and bytecode skipped)
    and over ``runtime`` (default: :func:`runtime_description`)."""
    runtime = runtime_description() if runtime is None else runtime
    digest = hashlib.sha256()
    files = sorted(
        {
            path
            for pattern in globs
            for path in book_root.glob(pattern)
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
            and not any(part.endswith(".egg-info") for part in path.parts)
            and not any(path.is_relative_to(book_root / folder) for folder in FINGERPRINT_EXCLUDED)
        }
    )
    for path in files:
        digest.update(path.relative_to(book_root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    digest.update(json.dumps(dict(runtime), sort_keys=True).encode())
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
        raise ConfigError(
            "MathJax is not installed: pip install django-static-mathjax (requirements/book.txt)") from error
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
    return _mlbook_choice("profiles", "current_profile")


def on_config_inited(app: Sphinx, config: Config) -> None:
    """Choose the cache folder and the substitutions before the environment compares configs."""
    profile = _current_profile()
    runtime = runtime_description()
    book_fingerprint = fingerprint(Path(app.srcdir), runtime=runtime)
    cache_dir = execution_cache_dir(Path(app.outdir), profile, book_fingerprint)
    for stale in prune_stale_caches(cache_dir, profile):
        LOGGER.info(f"[mlbook] removed stale execution cache {stale.name}")
    config.nb_execution_cache_path = str(cache_dir)
    substitutions = dict(config.myst_substitutions or {})
    substitutions.update(mlbook_profile=profile, mlbook_fingerprint=book_fingerprint[:16],
                         mlbook_runtime=format_runtime(runtime))
    config.myst_substitutions = substitutions
    # TensorFlow's C++ start-up lines (CPU feature notes) go to the kernel's stderr and would become warnings.
    # Level 2 keeps errors. oneDNN stays on: turning it off makes conv training 2-3x slower on CPUs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    vendored_mathjax_dir()  # fail early, with a clear message, if it is missing
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"  # relative: served from _static/ of this build
    LOGGER.info(f"[mlbook] profile={profile} fingerprint={book_fingerprint[:16]} cache={cache_dir}")
    LOGGER.info(f"[mlbook] runtime: {format_runtime(runtime)}")


def fallback_announcements(notebook: nbformat.NotebookNode) -> list[str]:
    """The lines of ``notebook``'s stdout outputs that announce substitute data (:data:`FALLBACK_LINE`)."""
    return [match.group(0)
            for cell in notebook.cells if cell.get("cell_type") == "code"
            for output in cell.get("outputs", [])
            if output.get("output_type") == "stream" and output.get("name") == "stdout"
            for match in FALLBACK_LINE.finditer(output.get("text", ""))]


def drop_fallback_runs(cache_path: Path, profile: str) -> dict[str, list[str]]:
    """Remove from the jupyter-cache at ``cache_path`` every executed notebook that announced substitute data,
    when ``profile`` is the one that must use the real data; return each removed notebook's path and lines.

    Why removal rather than a fingerprint of the data: which data a chapter gets is known only once it has run
    (a download can fail or time out at any time), so no key computed before execution could tell a fallback run
    from a real one; and the one signal every fallback gives, whichever loader it comes from, is the line of
    :func:`mlbook.data.announce_fallback` in its outputs. Removing the run costs one execution of the chapter per
    build while the data stay unreachable, and, as soon as they are reachable, the next build executes the chapter
    on them instead of serving the substitute's outputs as the profile's. The removal comes after the pages are
    written, so this build still shows the run (with its fallback line and its "data:" footer).
    """
    if profile != REAL_DATA_PROFILE or not Path(cache_path).is_dir():
        return {}
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_path))
    removed = {}
    for record in cache.list_cache_records():
        lines = fallback_announcements(cache.get_cache_bundle(record.pk).nb)
        if lines:
            cache.remove_cache(record.pk)
            removed[record.uri] = lines
    return removed


def on_build_finished(app: Sphinx, exception: Exception | None) -> None:
    """Keep fallback runs out of the execution cache (:func:`drop_fallback_runs`), also after a failed build.

    Runs after the other ``build-finished`` handlers (the ``.ipynb`` downloads read this build's outputs from
    the cache)."""
    config = getattr(app.env, "mystnb_config", None)  # absent when the build failed before it began
    if config is None or config.execution_mode != "cache":
        return
    cache_path = Path(config.execution_cache_path or ".jupyter_cache")  # the folder myst-nb uses
    for uri, lines in drop_fallback_runs(cache_path, _current_profile()).items():
        docname = app.env.path2doc(uri) or uri
        wanted = "; ".join(FALLBACK_LINE.match(line).group("wanted") for line in lines)
        LOGGER.info(f"[mlbook] {docname} ran without {wanted}: its outputs are left out of the execution cache, "
                    "so the next build executes it again")


def reread_uncached_notebooks(app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str],
                              removed: set[str]) -> list[str]:
    """Read again the notebooks whose executed outputs the cache no longer holds (e.g. a fallback run removed by
    :func:`drop_fallback_runs`): Sphinx would otherwise keep serving the page it read before."""
    if env.mystnb_config.execution_mode != "cache":
        return []
    from jupyter_cache import get_cache

    from mlbook_execute import pending_notebooks

    unchanged = sorted(env.all_docs.keys() - added - changed - removed)
    cache = get_cache(env.mystnb_config.execution_cache_path or ".jupyter_cache")
    return [item.docname for item in pending_notebooks(env, unchanged, cache)]


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


def page_directive(placeholder: type[nodes.Element], page_key: str) -> type[SphinxDirective]:
    """A directive without content that leaves a ``placeholder`` node, which an event handler fills once the data it
    needs has been read, and marks its page with ``page_key`` in the page's metadata (see :func:`marked_pages`)."""

    class PageDirective(SphinxDirective):
        has_content = False

        def run(self) -> list[nodes.Node]:
            self.env.metadata[self.env.docname][page_key] = True
            return [placeholder()]

    PageDirective.__name__ = f"{placeholder.__name__}_directive"
    return PageDirective


def marked_pages(env: BuildEnvironment, page_key: str) -> list[str]:
    """The pages that a :func:`page_directive` marked with ``page_key``."""
    return [docname for docname, meta in env.metadata.items() if meta.get(page_key)]


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", inherit_html_handlers)
    # priority < 500 so it runs before extensions that read the config at config-inited
    app.connect("config-inited", on_config_inited, priority=400)
    app.connect("build-finished", copy_mathjax)
    app.connect("build-finished", on_build_finished, priority=900)  # after the downloads read the cache
    app.connect("env-get-outdated", reread_uncached_notebooks)
    app.connect("html-page-context", deduplicate_script_files, priority=900)  # after others add scripts
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

"""The package's docstrings render on the API page: no MyST role written inside reStructuredText, where it would
show as raw markup (the built-book test finds it too, but only after a full build)."""

import importlib
import inspect
import pkgutil
import re

import docutils.core

import mlbook

LEFTOVER_ROLE = re.compile(r"\{[a-z]+(:[a-z]+)?\}`")


def documented_objects() -> list[tuple[str, str]]:
    found = []
    for info in pkgutil.iter_modules(mlbook.__path__):
        module = importlib.import_module(f"mlbook.{info.name}")
        found.append((module.__name__, module.__doc__ or ""))
        for name, obj in vars(module).items():
            defined_here = getattr(obj, "__module__", None) == module.__name__
            if defined_here and (inspect.isfunction(obj) or inspect.isclass(obj)):
                found.append((f"{module.__name__}.{name}", inspect.getdoc(obj) or ""))
    return found


def rendered_text(docstring: str) -> str:
    html = docutils.core.publish_parts(docstring, writer_name="html", settings_overrides={"report_level": 5})["body"]
    return re.sub(r"<[^>]+>", "", html)


def test_no_docstring_renders_a_myst_role_as_raw_text():
    assert LEFTOVER_ROLE.search(rendered_text("the prose writes ``{glue:text}`x``` here"))  # the check can fail
    leftovers = [where for where, docstring in documented_objects() if LEFTOVER_ROLE.search(rendered_text(docstring))]
    assert not leftovers, f"docstrings that show a MyST role as raw text: {leftovers}"

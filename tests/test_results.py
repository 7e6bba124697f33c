"""The results registry (``_results.yml``: bands, budgets, data), the parsing and judging of recorded numbers, and
the built book's Results page: every quick-profile headline number must fall inside its band."""

from __future__ import annotations

import html
import importlib.util
import json
import logging
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))
from sphinx.errors import ConfigError  # noqa: E402

import mlbook_build  # noqa: E402
import mlbook_results  # noqa: E402
from mlbook_registry import REGISTRY_FILE, RegistryError, load_registry  # noqa: E402

REGISTRY = load_registry(REPO_ROOT / REGISTRY_FILE)


def toc_chapters() -> set[str]:
    return set(re.findall(r"file:\s*(book/\S+)", (REPO_ROOT / "_toc.yml").read_text()))


@pytest.mark.parametrize(("text", "expected"), [("0.98", 0.98), ("np.float32(0.5)", 0.5), ("np.float64(-1e-07)", -1e-7),
                                                ("12", 12.0), ("nan", float("nan"))])
def test_numbers_are_read_from_glue_reprs(text, expected):
    value = mlbook_results.number_from_glue({"data": {"text/plain": text}})
    assert value == expected or (value != value and expected != expected)


@pytest.mark.parametrize("text", ["'scikit-learn digits'", "<IPython.core.display.Markdown object>", "[1, 2]", ""])
def test_non_numbers_are_refused_with_the_value_named(text):
    with pytest.raises(ValueError, match="is not a number"):
        mlbook_results.number_from_glue({"data": {"text/plain": text}})


def test_texts_and_conditions_are_read_from_glue_reprs():
    quoted = {"data": {"text/plain": "\"scikit-learn's digits\""}}
    assert mlbook_results.text_from_glue(quoted) == "scikit-learn's digits"
    markdown = {"data": {"text/plain": "<obj>", "text/markdown": " **MNIST** "}}
    assert mlbook_results.text_from_glue(markdown) == "**MNIST**"
    conditions = {"profile": "quick", "seed": 0, "device": "CPU"}
    assert mlbook_results.conditions_from_glue({"data": {"text/plain": repr(conditions)}}) == conditions
    assert mlbook_results.conditions_from_glue({"data": {"text/plain": "not a dict"}}) == {}


def test_chapters_are_found_by_docname_and_describe_their_data():
    gan = REGISTRY.find_chapter("book/generative/gan")
    assert gan is not None and gan.docname == "book/generative/gan"
    assert REGISTRY.find_chapter("book/no-such-chapter") is None
    glued = {gan.data_key: {"data": {"text/plain": "'the glued description'"}}}
    assert mlbook_results.chapter_data(gan, glued) == "the glued description"
    assert mlbook_results.chapter_data(gan, {}) == gan.data  # nothing glued: the registry's own words
    yolo = REGISTRY.find_chapter("book/vision/yolo")
    assert yolo.data_key is None
    assert mlbook_results.chapter_data(yolo, {"anything": {"data": {"text/plain": "'x'"}}}) == yolo.data


def test_status_marks_inside_outside_missing_and_unchecked():
    assert mlbook_results.status(0.5, (0.0, 1.0)) == "ok"
    assert mlbook_results.status(1.0, (0.0, 1.0)) == "ok"  # inclusive
    assert mlbook_results.status(1.01, (0.0, 1.0)) == "outside"
    assert mlbook_results.status(float("nan"), (0.0, 1.0)) == "outside"
    assert mlbook_results.status(None, (0.0, 1.0)) == "missing"
    assert mlbook_results.status(0.5, None) == "unchecked"


def test_evaluate_reports_each_expected_number_against_its_band():
    first, second = REGISTRY.expected[0], REGISTRY.expected[1]
    low, high = first.band("quick")
    glued = {first.chapter: {first.key: {"data": {"text/plain": repr(high + 1.0)}}}}
    rows = {row["key"]: row for row in mlbook_results.evaluate(REGISTRY.expected, glued, "quick")}
    assert rows[first.key]["status"] == "outside" and rows[first.key]["value"] == high + 1.0
    assert rows[second.key]["status"] == "missing"
    assert len(rows) == len({(e.chapter, e.key) for e in REGISTRY.expected})


def test_numbers_of_a_run_on_substitute_data_are_not_judged_against_the_real_datas_bands():
    expected = next(e for e in REGISTRY.expected if e.band("full"))
    low, high = expected.band("full")
    glued = {expected.chapter: {expected.key: {"data": {"text/plain": repr(low - 1.0)}}}}
    judged = {row["key"]: row for row in mlbook_results.evaluate(REGISTRY.expected, glued, "full")}
    assert judged[expected.key]["status"] == "outside"
    spared = {row["key"]: row
              for row in mlbook_results.evaluate(REGISTRY.expected, glued, "full", substituted={expected.chapter})}
    assert spared[expected.key]["status"] == "substitute" and spared[expected.key]["value"] == low - 1.0
    others = [row for row in spared.values() if row["chapter"] != expected.chapter]
    assert all(row["status"] != "substitute" for row in others)


def test_the_results_extension_finds_substitute_data_in_the_executed_notebook_and_the_footer_says_so(
        tmp_path, capsys):
    import nbformat
    from docutils import nodes

    from mlbook.data import announce_fallback

    announce_fallback("MNIST", "MLBOOK_OFFLINE is set", "scikit-learn's digits")
    line = capsys.readouterr().out
    folder = tmp_path / "jupyter_execute" / "book" / "cnn"
    folder.mkdir(parents=True)
    cell = nbformat.v4.new_code_cell("data = load()", outputs=[nbformat.v4.new_output("stream", name="stdout",
                                                                                      text="loading\n" + line)])
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), folder / "cnn-mnist.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), folder / "inception.ipynb")

    class App:
        outdir = str(tmp_path / "html")

    assert mlbook_results.substitute_data(App(), "book/cnn/cnn-mnist") == ["MNIST"]
    assert mlbook_results.substitute_data(App(), "book/cnn/inception") == []
    chapter = {"data": "scikit-learn's digits", "seconds": None, "substitute_for": ["MNIST"]}
    footer = mlbook_results.provenance_node(chapter, "full").astext()
    assert "substitute: MNIST could not be loaded" in footer and "not judged against the full bands" in footer
    assert isinstance(mlbook_results.provenance_node({**chapter, "substitute_for": []}, "full"), nodes.container)


def glue_folder(tmp_path: Path) -> tuple[SimpleNamespace, Path]:
    """A stand-in Sphinx app whose ``outdir`` is ``tmp_path/html``, and the folder myst-nb writes glue files to."""
    folder = tmp_path / "jupyter_execute" / "book"
    folder.mkdir(parents=True)
    return SimpleNamespace(outdir=str(tmp_path / "html")), folder


def truncated_glue(path: Path) -> None:
    text = json.dumps({"accuracy": {"data": {"text/plain": "0.98"}, "metadata": {}}})
    path.write_text(text[: len(text) // 2], encoding="utf-8")


def test_a_truncated_glue_file_reads_as_empty_is_deleted_and_logged_once(tmp_path, caplog):
    app, folder = glue_folder(tmp_path)
    truncated_glue(folder / "gan.glue.json")
    (folder / "vae.glue.json").write_text('{"loss": {"data": {"text/plain": "1.5"}}}', encoding="utf-8")
    (folder / "list.glue.json").write_text("[1, 2]", encoding="utf-8")
    with caplog.at_level(logging.INFO):
        assert mlbook_results.glue_outputs(app, "book/gan") == {}
        assert mlbook_results.glue_outputs(app, "book/gan") == {}  # now simply missing: no second line
        assert mlbook_results.glue_outputs(app, "book/vae") == {"loss": {"data": {"text/plain": "1.5"}}}
        assert mlbook_results.glue_outputs(app, "book/list") == {}
    lines = [record.getMessage() for record in caplog.records if "glue.json" in record.getMessage()]
    assert len(lines) == 2 and "gan.glue.json is unreadable (JSONDecodeError" in lines[0]
    assert "list.glue.json is unreadable (a JSON list, not an object)" in lines[1]
    assert not (folder / "gan.glue.json").exists() and not (folder / "list.glue.json").exists()


def test_chapters_whose_glue_file_is_lost_are_read_again(tmp_path):
    app, folder = glue_folder(tmp_path)
    for name in ("truncated", "edited"):
        truncated_glue(folder / f"{name}.glue.json")
    (folder / "intact.glue.json").write_text('{"x": {"data": {"text/plain": "1"}}}', encoding="utf-8")
    glued = {"glue": ["x"]}
    env = SimpleNamespace(all_docs={f"book/{name}": 0.0 for name in ("truncated", "intact", "missing", "plain",
                                                                       "edited")},
                          nb_metadata={"book/truncated": glued, "book/intact": glued, "book/missing": glued,
                                       "book/plain": {}, "book/edited": glued})
    again = mlbook_results.reread_chapters_with_lost_glue(app, env, set(), {"book/edited"}, set())
    assert again == ["book/truncated", "book/missing"]  # edited: Sphinx reads it anyway; plain: glued nothing
    assert not (folder / "truncated.glue.json").exists() and (folder / "intact.glue.json").is_file()


def test_registry_is_consistent_with_the_book():
    chapters = {chapter.docname for chapter in REGISTRY.chapters}
    executed = {c for c in toc_chapters() if "kernelspec:" in (REPO_ROOT / f"{c}.md").read_text()[:400]}
    assert executed == chapters, f"every executed chapter needs a budget in {REGISTRY_FILE}: {executed ^ chapters}"
    for expected in REGISTRY.expected:
        assert expected.chapter in chapters
        for profile, (low, high) in expected.bands.items():
            assert profile in ("quick", "full") and low < high, (expected.key, profile)
        assert expected.band("quick") is not None, f"{expected.key} has no quick band"
    for chapter in REGISTRY.chapters:
        assert chapter.budget_s["quick"] > 0


def test_package_versions_name_python_numpy_and_mlbook():
    versions = mlbook_results.package_versions()
    assert {"python", "numpy", "mlbook"} <= versions.keys()


def _first_expected(document: dict[str, Any]) -> dict[str, Any]:
    return document["expected"][0]


#: (what is wrong, how the registry's parsed YAML is made so, what the error must say)
MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown chapter", lambda d: _first_expected(d).update(chapter="book/no-such-chapter"),
     r"expected\[0\] \(moons_test_accuracy\): unknown chapter 'book/no-such-chapter'"),
    ("low above high", lambda d: _first_expected(d).update(bands={"quick": [0.9, 0.5]}),
     r"expected\[0\] \(moons_test_accuracy\): bands: quick: low 0.9 is above high 0.5"),
    ("missing field", lambda d: _first_expected(d).pop("label"),
     r"expected\[0\]: missing field label"),
    ("unknown field", lambda d: d["chapters"][1].update(budget={"quick": 1}),
     r"chapters\[1\]: unknown field budget; the fields are docname, title, budget_s, data_key, data"),
    ("unknown profile", lambda d: d["chapters"][0]["budget_s"].update(fast=10),
     r"chapters\[0\] \(book/foundations/numpy-nn\): budget_s: unknown profile fast"),
    ("band of text", lambda d: _first_expected(d).update(bands={"quick": [0.0, "1e-6"]}),
     r"bands: quick: must be a number, found '1e-6' \(YAML reads 1e-6 as text: write 1.0e-6\)"),
    ("band of one number", lambda d: _first_expected(d).update(bands={"quick": 0.9}),
     r"bands: quick: must be \[low, high\], found 0.9"),
    ("budget of zero", lambda d: d["chapters"][0].update(budget_s={"quick": 0}),
     r"budget_s: quick: must be a positive number of seconds"),
    ("bad format", lambda d: _first_expected(d).update(fmt=".3q"),
     r"fmt: '.3q' is not a format spec for a number"),
    ("chapter twice", lambda d: d["chapters"].append(dict(d["chapters"][0])),
     r"chapters: listed more than once: book/foundations/numpy-nn"),
    ("number twice", lambda d: d["expected"].append(dict(_first_expected(d))),
     r"expected\[\d+\] \(moons_test_accuracy\): listed more than once for book/foundations/numpy-nn"),
    ("empty title", lambda d: d["chapters"][0].update(title=" "),
     r"chapters\[0\] \(book/foundations/numpy-nn\): title: must be non-empty text"),
    ("entry not a mapping", lambda d: d["chapters"].append("book/x"),
     r"chapters\[\d+\]: must be a mapping of fields, found str"),
    ("a third list", lambda d: d.update(budgets=[]),
     r"needs exactly the lists 'chapters' and 'expected', found \['budgets', 'chapters', 'expected'\]"),
]


@pytest.mark.parametrize(("make_malformed", "message"), [(make, message) for _, make, message in MALFORMED],
                         ids=[name for name, _, _ in MALFORMED])
def test_a_malformed_registry_entry_is_refused_with_the_entry_and_problem_named(tmp_path, make_malformed, message):
    document = yaml.safe_load((REPO_ROOT / REGISTRY_FILE).read_text(encoding="utf-8"))
    make_malformed(document)
    path = tmp_path / REGISTRY_FILE
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RegistryError, match=message):
        load_registry(path)


def test_an_unparsable_or_missing_registry_is_refused(tmp_path):
    path = tmp_path / REGISTRY_FILE
    path.write_text("chapters: [\n", encoding="utf-8")
    with pytest.raises(RegistryError, match=f"{re.escape(str(path))}: cannot be read"):
        load_registry(path)
    with pytest.raises(RegistryError, match="cannot be read"):
        load_registry(tmp_path / "absent.yml")


def test_the_extension_reads_the_registry_once_stops_the_build_on_a_malformed_one_and_ties_chapters_to_it(tmp_path):
    app = SimpleNamespace(srcdir=str(REPO_ROOT))
    mlbook_results.read_registry(app)
    assert mlbook_results.registry(app) == REGISTRY
    noted = []
    for docname in ("book/cnn/cnn-mnist", "book/results"):
        app.env = SimpleNamespace(docname=docname, note_dependency=noted.append)
        mlbook_results.note_registry_dependency(app, doctree=None)
    assert noted == [str(REPO_ROOT / REGISTRY_FILE)]  # the chapter's footer shows its budget; the page is re-read

    (tmp_path / REGISTRY_FILE).write_text("chapters: []\nexpected: []\nbudgets: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{REGISTRY_FILE}: needs exactly the lists"):
        mlbook_results.read_registry(SimpleNamespace(srcdir=str(tmp_path)))


def _mirror_cache_inputs(root: Path) -> None:
    """Copy into ``root`` what the two caches hash (the package's sources, its pyproject, the requirements) and the
    registry, each at its place in the repository."""
    shutil.copytree(REPO_ROOT / "code/src", root / "code/src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    shutil.copy2(REPO_ROOT / "code/pyproject.toml", root / "code/pyproject.toml")
    shutil.copytree(REPO_ROOT / "requirements", root / "requirements")
    shutil.copy2(REPO_ROOT / REGISTRY_FILE, root / REGISTRY_FILE)


def _mirrored_cache_key(root: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], str]:
    """A weights-cache key computed by the mirrored package's ``mlbook.cache`` (which hashes the package's files
    beside it) for a fixed model, config and runtime."""
    spec = importlib.util.spec_from_file_location("mirrored_mlbook_cache", root / "code/src/mlbook/cache.py")
    cache = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, cache)
    spec.loader.exec_module(cache)
    monkeypatch.setattr(cache, "runtime_signature", lambda: {"tensorflow": "pinned", "device": "cpu"})

    def key() -> str:
        cache.package_source_hash.cache_clear()
        return cache.cache_key("cnn", {"filters": 8, "epochs": 2}, profile="quick")

    return key


def test_editing_a_band_or_a_budget_changes_neither_the_execution_cache_nor_any_weights_cache_key(
        tmp_path, monkeypatch):
    _mirror_cache_inputs(tmp_path)
    runtime = {"tensorflow": "pinned"}
    execution_cache = lambda: mlbook_build.execution_cache_dir(  # noqa: E731
        tmp_path / "_build/html", "quick", mlbook_build.fingerprint(tmp_path, runtime=runtime))
    weights_key = _mirrored_cache_key(tmp_path, monkeypatch)
    before = (execution_cache(), weights_key())

    registry = tmp_path / REGISTRY_FILE
    chapter, number = REGISTRY.chapters[0], REGISTRY.expected[0]
    text = registry.read_text(encoding="utf-8")
    for old, new in ((f"budget_s: {{quick: {chapter.budget_s['quick']:g}}}", "budget_s: {quick: 999}"),
                     ("bands: {quick: [0.90, 1.0]}", "bands: {quick: [0.95, 1.0]}")):
        assert text.count(old) >= 1, old
        text = text.replace(old, new, 1)
    registry.write_text(text, encoding="utf-8")
    edited = load_registry(registry)
    assert edited.chapters[0].budget_s["quick"] == 999 and edited.expected[0].band("quick") == (0.95, 1.0)
    assert edited.expected[0].key == number.key

    assert (execution_cache(), weights_key()) == before

    package_file = tmp_path / "code/src/mlbook/notebook.py"  # the control: a package edit moves both
    package_file.write_text(package_file.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    after_package_edit = (execution_cache(), weights_key())
    assert after_package_edit[0] != before[0] and after_package_edit[1] != before[1]


@pytest.mark.slow
def test_quick_build_numbers_are_inside_their_bands(built_book):
    report = json.loads((built_book / "results-quick.json").read_text())
    assert report["profile"] == "quick"
    outside = [f"{row['chapter']}:{row['key']}={row['value']} not in {row['band']}" for row in report["results"]
               if row["status"] != "ok"]
    assert not outside, "headline numbers outside their bands:\n" + "\n".join(outside)
    for chapter in report["chapters"]:
        assert chapter["seconds"] is not None and chapter["seconds"] > 0, chapter["docname"]
        assert chapter["profile"] == "quick" and chapter["device"].startswith("CPU"), chapter


@pytest.mark.slow
def test_results_page_and_provenance_footers_are_built(built_book):
    page = html.unescape((built_book / "book/results.html").read_text())
    report = json.loads((built_book / "results-quick.json").read_text())
    for row in report["results"]:
        assert row["label"] in page
    assert "✗" not in page.split("Time per chapter")[0], "the page marks a number outside its band"
    for chapter in report["chapters"]:
        chapter_page = (built_book / f"{chapter['docname']}.html").read_text()
        assert "Provenance of this page" in chapter_page and f"seed {chapter['seed']}" in chapter_page, (
            chapter["docname"])


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "code/src/mlbook/published").glob("results-*.json")),
                         ids=lambda path: path.name)
def test_the_numbers_the_package_ships_follow_the_registry(path):
    """The snapshot mlbook.compare_with_book reads (tools/publish_results.py) has the registry's numbers, bands,
    labels and formats: a band changed in _results.yml without `make publish-results` fails here."""
    snapshot = json.loads(path.read_text(encoding="utf-8"))
    profile = snapshot["profile"]
    assert path.name == f"results-{profile}.json"
    shipped = [(r["chapter"], r["key"], r["label"], r["band"] and tuple(r["band"]), r["fmt"])
               for r in snapshot["results"]]
    assert shipped == [(e.chapter, e.key, e.label, e.band(profile), e.fmt) for e in REGISTRY.expected]
    for result in snapshot["results"]:
        assert result["band"] is None or result["band"][0] <= result["value"] <= result["band"][1], result["key"]
    assert set(snapshot["devices"]) == {chapter.docname for chapter in REGISTRY.chapters}
    assert {"python", "keras", "numpy"} <= set(snapshot["versions"])


def test_the_snapshot_stays_out_of_the_execution_fingerprint(tmp_path):
    (tmp_path / "code/src/mlbook/published").mkdir(parents=True)
    (tmp_path / "code/src/mlbook/model.py").write_text("LAYERS = 2\n")
    runtime = {"tensorflow": "x"}
    first = mlbook_build.fingerprint(tmp_path, runtime=runtime)
    (tmp_path / "code/src/mlbook/published/results-quick.json").write_text("{}")
    assert mlbook_build.fingerprint(tmp_path, runtime=runtime) == first
    (tmp_path / "code/src/mlbook/model.py").write_text("LAYERS = 3\n")
    assert mlbook_build.fingerprint(tmp_path, runtime=runtime) != first

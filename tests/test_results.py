"""The results registry (bands, budgets, parsing of recorded numbers) and the built book's Results page: every
quick-profile headline number must fall inside its band."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from mlbook import results

REPO_ROOT = Path(__file__).resolve().parents[1]


def toc_chapters() -> set[str]:
    return set(re.findall(r"file:\s*(book/\S+)", (REPO_ROOT / "_toc.yml").read_text()))


@pytest.mark.parametrize(("text", "expected"), [("0.98", 0.98), ("np.float32(0.5)", 0.5), ("np.float64(-1e-07)", -1e-7),
                                                ("12", 12.0), ("nan", float("nan"))])
def test_numbers_are_read_from_glue_reprs(text, expected):
    value = results.number_from_glue({"data": {"text/plain": text}})
    assert value == expected or (value != value and expected != expected)


@pytest.mark.parametrize("text", ["'scikit-learn digits'", "<IPython.core.display.Markdown object>", "[1, 2]", ""])
def test_non_numbers_are_refused_with_the_value_named(text):
    with pytest.raises(ValueError, match="is not a number"):
        results.number_from_glue({"data": {"text/plain": text}})


def test_texts_and_conditions_are_read_from_glue_reprs():
    assert results.text_from_glue({"data": {"text/plain": "\"scikit-learn's digits\""}}) == "scikit-learn's digits"
    assert results.text_from_glue({"data": {"text/plain": "<obj>", "text/markdown": " **MNIST** "}}) == "**MNIST**"
    conditions = {"profile": "quick", "seed": 0, "device": "CPU"}
    assert results.conditions_from_glue({"data": {"text/plain": repr(conditions)}}) == conditions
    assert results.conditions_from_glue({"data": {"text/plain": "not a dict"}}) == {}


def test_chapters_are_found_by_docname_and_describe_their_data():
    gan = results.find_chapter("book/generative/gan")
    assert gan is not None and gan.docname == "book/generative/gan"
    assert results.find_chapter("book/no-such-chapter") is None
    glued = {gan.data_key: {"data": {"text/plain": "'the glued description'"}}}
    assert results.chapter_data(gan, glued) == "the glued description"
    assert results.chapter_data(gan, {}) == gan.data  # nothing glued: the registry's own words
    yolo = results.find_chapter("book/vision/yolo")
    assert yolo.data_key is None
    assert results.chapter_data(yolo, {"anything": {"data": {"text/plain": "'x'"}}}) == yolo.data


def test_status_marks_inside_outside_missing_and_unchecked():
    assert results.status(0.5, (0.0, 1.0)) == "ok"
    assert results.status(1.0, (0.0, 1.0)) == "ok"  # inclusive
    assert results.status(1.01, (0.0, 1.0)) == "outside"
    assert results.status(float("nan"), (0.0, 1.0)) == "outside"
    assert results.status(None, (0.0, 1.0)) == "missing"
    assert results.status(0.5, None) == "unchecked"


def test_evaluate_reports_each_expected_number_against_its_band():
    first, second = results.EXPECTED[0], results.EXPECTED[1]
    low, high = first.band("quick")
    glued = {first.chapter: {first.key: {"data": {"text/plain": repr(high + 1.0)}}}}
    rows = {row["key"]: row for row in results.evaluate(glued, "quick")}
    assert rows[first.key]["status"] == "outside" and rows[first.key]["value"] == high + 1.0
    assert rows[second.key]["status"] == "missing"
    assert len(rows) == len({(e.chapter, e.key) for e in results.EXPECTED})


def test_numbers_of_a_run_on_substitute_data_are_not_judged_against_the_real_datas_bands():
    expected = next(e for e in results.EXPECTED if e.band("full"))
    low, high = expected.band("full")
    glued = {expected.chapter: {expected.key: {"data": {"text/plain": repr(low - 1.0)}}}}
    judged = {row["key"]: row for row in results.evaluate(glued, "full")}
    assert judged[expected.key]["status"] == "outside"
    spared = {row["key"]: row for row in results.evaluate(glued, "full", substituted={expected.chapter})}
    assert spared[expected.key]["status"] == "substitute" and spared[expected.key]["value"] == low - 1.0
    others = [row for row in spared.values() if row["chapter"] != expected.chapter]
    assert all(row["status"] != "substitute" for row in others)


def test_the_results_extension_finds_substitute_data_in_the_executed_notebook_and_the_footer_says_so(
        tmp_path, capsys):
    import sys

    import nbformat
    from docutils import nodes

    sys.path.insert(0, str(REPO_ROOT / "tools"))
    import mlbook_results

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


def test_registry_is_consistent_with_the_book():
    chapters = {chapter.docname for chapter in results.CHAPTERS}
    executed = {c for c in toc_chapters() if "kernelspec:" in (REPO_ROOT / f"{c}.md").read_text()[:400]}
    assert executed == chapters, f"every executed chapter needs a budget in mlbook.results: {executed ^ chapters}"
    for expected in results.EXPECTED:
        assert expected.chapter in chapters
        for profile, (low, high) in expected.bands.items():
            assert profile in ("quick", "full") and low < high, (expected.key, profile)
        assert expected.band("quick") is not None, f"{expected.key} has no quick band"
    for chapter in results.CHAPTERS:
        assert chapter.budget_s["quick"] > 0


def test_package_versions_name_python_numpy_and_mlbook():
    versions = results.package_versions()
    assert {"python", "numpy", "mlbook"} <= versions.keys()


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

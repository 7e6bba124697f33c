"""The Colab notebooks (tools/colab.py, tools/colab_run.py): present, in sync with their chapters, free of MyST
markup, numbered as the built book numbers, linked from the pages, and runnable in a fresh environment."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import jupytext
import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))
import colab  # noqa: E402
import colab_run  # noqa: E402

CHAPTERS = colab.chapter_sources()
NOTEBOOKS = [chapter.with_suffix(".ipynb") for chapter in CHAPTERS]
BASEURL = "https://example.org/book/"
FRONT_MATTER = ("---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n  name: python3\n"
                "  display_name: Python 3\n  language: python\n---\n")


def write_book(root: Path, parts: list[dict[str, str]]) -> None:
    """A small book in ``root``: _config.yml, a _toc.yml with one numbered part per dict of {docname: body},
    and each chapter's .md (front matter added)."""
    (root / "_config.yml").write_text("repository:\n  url: https://github.com/org/repo\n  branch: dev\n"
                                      f"html:\n  baseurl: {BASEURL}\n")
    toc = {"format": "jb-book", "root": "book/intro",
           "parts": [{"caption": f"Part {n}", "numbered": True, "chapters": [{"file": name} for name in part]}
                     for n, part in enumerate(parts)]}
    (root / "_toc.yml").write_text(json.dumps(toc))
    (root / "book").mkdir(exist_ok=True)
    (root / "book/intro.md").write_text("(ch-intro)=\n# Intro\n")
    for part in parts:
        for docname, body in part.items():
            (root / f"{docname}.md").write_text(FRONT_MATTER + body)


def markdown_of(root: Path, docname: str) -> str:
    """All the markdown cells of one chapter's Colab notebook, joined."""
    notebook = colab.make_notebook(root / f"{docname}.md", colab.book_settings(root), root=root)
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def assert_conversion_refuses(book: Path, docname: str, text: str, message: str) -> None:
    """Appending ``text`` to the chapter ``docname`` of ``book`` makes its conversion fail with ``message``."""
    chapter = book / f"{docname}.md"
    chapter.write_text(chapter.read_text() + f"\n{text}\n")
    with pytest.raises(ValueError, match=re.escape(message)):
        markdown_of(book, docname)


FIRST = """(ch-first)=
# The first chapter

(sec-first-part)=
## A part of it

Text.
"""

CELL = "```{code-cell} ipython3\n%s\n```\n"
FIGURE_CELL = ("```{code-cell} ipython3\n---\nmystnb:\n  figure:\n    caption: %s\n    name: %s\n---\n"
               "plot()\n```\n")
GLUE_EARLY = CELL % 'glue("early", 0.5, display=False)'
GLUE_LATE = CELL % 'for name in ("late_a", "late_b"):\n    glue(name, 1, display=False)'
UNCAPTIONED, PLOT = FIGURE_CELL % ("", "fig-third-uncaptioned"), FIGURE_CELL % ("The first plot.", "fig-third-plot")
SECOND_PLOT = FIGURE_CELL % ("The second plot, of {glue:text}`early:.1f`.", "fig-third-second")
THIRD = f"""(ch-third)=
# The third chapter

{GLUE_EARLY}
(sec-third-maths)=
## Maths

$$
y = x
$$

$$
a = b
$$ (eq-third-first)

$$ c = d $$ (eq-third-second)

{UNCAPTIONED}
{PLOT}
{SECOND_PLOT}
Equations {{eq}}`eq-third-second` and {{eq}}`eq-third-first`; {{numref}}`fig-third-second` and
{{numref}}`Plot %s <fig-third-plot>`.

{{ref}}`sec-third-maths` has them. See {{ref}}`sec-third-maths`, {{ref}}`this part <sec-third-maths>`,
{{ref}}`sec-first-part`, {{ref}}`ch-first` and {{ref}}`the start <ch-first>`; this is {{ref}}`ch-third`.

Early is {{glue:text}}`early:.2f`. Page {{doc}}`first`, {{doc}}`its title <./first.md>`, maths {{math}}`x^2`.

Late is {{glue:text}}`late_a` and then {{glue:text}}`late_b:.0%` and {{glue:md}}`early`.

{GLUE_LATE}
:::{{admonition}} Exercise 1
:class: tip
Work out:

- one $x$
- two

```python
print(f"{{x}}`")
```
:::

:::{{admonition}} Solution
:class: dropdown
$$
z = 1
$$ (eq-third-solution)

Done, as in {{eq}}`eq-third-solution`.
:::

```{{note}}
A plain note.
```
"""


@pytest.fixture
def small_book(tmp_path: Path) -> Path:
    """Three chapters over two numbered parts; the third (chapter 3) uses every conversion."""
    write_book(tmp_path, [{"book/first": FIRST, "book/second": "(ch-second)=\n# Second\n"}, {"book/third": THIRD}])
    return tmp_path


def test_every_chapter_is_a_notebook_source():
    assert REPO_ROOT / "book/foundations/numpy-nn.md" in CHAPTERS
    assert all(path.suffix == ".md" for path in CHAPTERS)


def test_chapters_are_numbered_across_numbered_parts(small_book):
    assert colab.toc_pages(small_book) == [("book/intro", None), ("book/first", 1), ("book/second", 2),
                                           ("book/third", 3)]
    numbers = dict(colab.toc_pages())
    assert numbers["book/foundations/numpy-nn"] == 1 and numbers["book/sequences/genetic-algorithms"] == 14
    assert numbers["book/api"] is None


def test_numref_becomes_the_figure_number_and_captions_get_a_cell(small_book):
    markdown = markdown_of(small_book, "book/third")
    assert "Figure 3.2 and\nPlot 3.1." in markdown  # the uncaptioned figure is not numbered
    assert "**Figure 3.1.** The first plot." in markdown
    assert "**Figure 3.2.** The second plot, of `early` (printed above)." in markdown
    assert "{numref}" not in markdown and "fig-third" not in markdown


def test_labelled_equations_get_a_tag_and_eq_their_number(small_book):
    markdown = markdown_of(small_book, "book/third")
    assert "$$\ny = x\n$$" in markdown  # unlabelled: not numbered
    assert "$$\na = b\n\\tag{3.1}\n$$" in markdown
    assert "$$ c = d \\tag{3.2} $$" in markdown
    assert "Equations (3.2) and (3.1);" in markdown
    assert "\\tag{3.3}" in markdown and "Done, as in (3.3)." in markdown


def test_ref_is_a_title_on_the_same_page_and_a_link_to_another(small_book):
    markdown = markdown_of(small_book, "book/third")
    assert "The section *Maths* has them. See the section *Maths*, this part," in markdown
    assert f"[A part of it]({BASEURL}book/first.html#sec-first-part)" in markdown
    assert f"[The first chapter]({BASEURL}book/first.html) and [the start]({BASEURL}book/first.html);" in markdown
    assert "this is this chapter." in markdown


def test_doc_becomes_a_link_and_math_dollars(small_book):
    markdown = markdown_of(small_book, "book/third")
    assert (f"Page [The first chapter]({BASEURL}book/first.html), [its title]({BASEURL}book/first.html), "
            "maths $x^2$.") in markdown


GLOSSARY = """(ch-glossary)=
# Glossary

```{glossary}
:sorted:

latent space
  The space of the codes; see {term}`logit`.

KL divergence
Kullback–Leibler divergence
  A divergence.

logit : score
  A score.
```
"""

TERMS = """(ch-terms)=
# Terms

Codes live in the {term}`latent space`; {term}`logits <logit>` are scores, the {term}`Latent
space` again, the {term}`Kullback–Leibler divergence` and {term}`KL divergence <kl   divergence>`.
"""


def with_glossary(root: Path, glossary: str = GLOSSARY) -> None:
    """A glossary page, as book/glossary.md: in an unnumbered part of the small book's toc, with no kernelspec."""
    toc = json.loads((root / "_toc.yml").read_text())
    toc["parts"].append({"caption": "Reference", "chapters": [{"file": "book/glossary"}]})
    (root / "_toc.yml").write_text(json.dumps(toc))
    (root / "book/glossary.md").write_text(glossary)


@pytest.fixture
def glossary_book(tmp_path: Path) -> Path:
    """One chapter that links glossary terms in every supported way, and the glossary that defines them."""
    write_book(tmp_path, [{"book/terms": TERMS}])
    with_glossary(tmp_path)
    return tmp_path


def test_glossary_terms_are_indexed_with_the_anchors_sphinx_gives_them(glossary_book):
    terms = colab.book_index(glossary_book).terms
    assert {key: (label.docname, label.anchor) for key, label in terms.items()} == {
        "latent space": ("book/glossary", "term-latent-space"),
        "kl divergence": ("book/glossary", "term-KL-divergence"),  # each line of an entry is a term of its own
        "kullback–leibler divergence": ("book/glossary", "term-KullbackLeibler-divergence"),
        "logit": ("book/glossary", "term-logit"),  # the classifier after " : " is not part of the term
    }


def test_term_becomes_a_link_to_its_entry_in_the_published_glossary(glossary_book):
    markdown = markdown_of(glossary_book, "book/terms")
    page = f"{BASEURL}book/glossary.html"
    assert (f"Codes live in the [latent space]({page}#term-latent-space); [logits]({page}#term-logit) are scores, "
            f"the [Latent\nspace]({page}#term-latent-space) again, the "
            f"[Kullback–Leibler divergence]({page}#term-KullbackLeibler-divergence) and "
            f"[KL divergence]({page}#term-KL-divergence).") in markdown  # found whatever the case and the spacing
    assert not myst_left(markdown)


@pytest.mark.parametrize("term", [
    "latent space", "KL divergence", "Kullback–Leibler divergence", "mAP", "1×1 convolution", "x.y_z",
    "ReLU (rectified linear unit)", "Schrödinger's équation", "  spaces   inside ", "Søren's Straße, œuvre",
    "øđħıłŧƀƃƈƌƒƙƚƞƥƫƭƴƶǥȥȴȵȶȷȼȿɀɇɉɋɍɏßæœȸȹ",  # every letter that Sphinx transliterates
])
def test_term_anchors_are_the_ids_sphinx_gives_glossary_terms(term):
    from sphinx.util.nodes import _make_id  # make_id(env, document, "term", term) applies it to "term-" + term

    assert colab.term_id(term) == _make_id(f"term-{term}")


@pytest.mark.parametrize(("line", "message"), [
    ("Latent Space", "glossary term 'Latent Space' is defined twice: book/glossary and book/glossary"),
    ("latent-space", "glossary terms 'latent space' and 'latent-space' have the same anchor 'term-latent-space'"),
    ("*logit*", "book/glossary.md: glossary term '*logit*' has markup"),
])
def test_glossary_terms_that_sphinx_would_not_link_as_expected_raise(glossary_book, line, message):
    (glossary_book / "book/glossary.md").write_text(GLOSSARY.replace("logit : score", line))
    with pytest.raises(ValueError, match=re.escape(message)):
        colab.book_index(glossary_book)


def test_the_books_glossary_is_indexed_and_the_notebooks_link_to_it():
    terms = colab.book_index().terms
    assert terms["latent space"] == colab.Label("book/glossary", "term", "latent space", "term-latent-space")
    assert terms["elbo"].anchor == "term-ELBO" and terms["kl divergence"].anchor == "term-KL-divergence"
    vae = (REPO_ROOT / "book/generative/vae.ipynb").read_text()
    assert f"({colab.book_settings()['baseurl']}book/glossary.html#term-latent-space)" in vae


def test_glue_says_where_the_value_is_printed(small_book):
    markdown = markdown_of(small_book, "book/third")
    assert "Early is `early` (printed above). Page" in markdown
    assert ("Late is `late_a` and then `late_b` and `early`. (`late_a` and `late_b` are printed below; "
            "`early` is printed above.)") in markdown


def test_glue_sites_know_literal_formatted_and_variable_names():
    site = colab.glue_site('%matplotlib inline\nglue("a", 1)\nfor k in ["b", "c"]:\n    glue(f"x_{k}_y", 2)\n'
                           'for name in ("p", "q"):\n    glue(name, 3, display=False)\n', cell=4)
    assert all(site.glues(name) for name in ("a", "x_b_y", "x_anything_y", "p", "q"))
    assert not site.glues("x__z") and not site.glues("r")
    assert colab.glue_place("a", 5, (site,)) == "printed above"
    assert colab.glue_place("a", 3, (site,)) == "printed below"
    assert colab.glue_place("r", 3, (site,)) == "printed by a code cell of this notebook"
    assert colab.glue_site('glue("a", 1)\nobject?', cell=0).names == {"a"}  # IPython help syntax: not Python


def test_settings_recorded_by_setup_chapter_are_among_the_settings_printed_above():
    from mlbook.runtime import SETTINGS_GLUE_PREFIX

    site = colab.glue_site("ctx = mlbook.setup_chapter(vae.SETTINGS)\ncfg = ctx.cfg\n", cell=2)
    assert site.glues(f"{SETTINGS_GLUE_PREFIX}grid_size") and site.glues("cfg_hidden_num_steps")
    assert not site.glues("grid_size")
    assert colab.glue_place("cfg_grid_size", 5, (site,)) == "among the settings printed above"
    assert colab.glue_place("cfg_grid_size", 1, (site,)) == "printed below"


def test_admonitions_become_blockquotes_and_dropdowns_details(small_book):
    markdown = markdown_of(small_book, "book/third")
    assert "> **Exercise 1**\n>\n> Work out:\n>\n> - one $x$\n> - two\n>\n> ```python\n> print(f\"{x}`\")\n> ```" \
        in markdown
    assert "<details><summary>Solution</summary>\n\n$$\nz = 1\n\\tag{3.3}\n$$\n\nDone, as in (3.3).\n\n</details>" \
        in markdown
    assert "> **Note**\n>\n> A plain note." in markdown
    assert ":::" not in markdown and ":class:" not in markdown and "```{" not in markdown


def test_label_lines_disappear(small_book):
    markdown = markdown_of(small_book, "book/third")
    assert markdown.startswith("# The third chapter")
    assert not re.search(r"^\(.*\)=$", markdown, re.MULTILINE)


@pytest.mark.parametrize(("text", "message"), [
    ("{ref}`sec-nowhere`", "book/third.md: unknown label 'sec-nowhere'"),
    ("{numref}`sec-third-maths`", "'sec-third-maths' is not a numbered figure"),
    ("{eq}`fig-third-plot`", "'fig-third-plot' is not a labelled equation"),
    ("{numref}`fig-third-uncaptioned`", "is not a numbered figure"),
    ("{download}`data.csv`", "unsupported role {download}"),
    ("{glue:figure}`early`", "unsupported role {glue:figure}"),
    ("{term}`nowhere`", "book/third.md: unknown glossary term 'nowhere' in {term}"),
    ("```{eval-rst}\n.. note:: x\n```", "unsupported directive {eval-rst}"),
    ("Profile {{ mlbook_profile }}", "unsupported substitution"),
    ("\\begin{align}\nx\n\\end{align}", "unsupported amsmath environment"),
])
def test_myst_that_cannot_be_converted_raises_naming_it(small_book, text, message):
    assert_conversion_refuses(small_book, "book/third", text, message)


def test_a_link_to_another_page_needs_the_published_base_url(small_book):
    config = small_book / "_config.yml"
    config.write_text(config.read_text().replace(f"html:\n  baseurl: {BASEURL}\n", ""))
    with pytest.raises(ValueError, match="book/third.md links to book/first: set html.baseurl"):
        markdown_of(small_book, "book/third")


def test_the_published_base_url_comes_from_config():
    assert colab.book_settings()["baseurl"] == "https://ml-notebook.github.io/ml-notebook/"


REFERENCES_BIB = r"""
@inproceedings{kingma2015adam,
  author = {Kingma, D. P. and Ba, J.},
  title = {Adam: a method for stochastic optimization},
  booktitle = {ICLR},
  year = {2015},
  eprint = {1412.6980},
}
@article{lecun1998gradient,
  author = {LeCun, Y. and Bottou, L. and Bengio, Y. and Haffner, P.},
  title = {Gradient-based learning applied to document recognition},
  journal = {Proceedings of the IEEE},
  volume = {86},
  number = {11},
  pages = {2278--2324},
  year = {1998},
}
@book{goodfellow2016deep,
  author = {Goodfellow, I. and Bengio, Y. and Courville, A.},
  title = {Deep Learning},
  publisher = {MIT Press},
  year = {2016},
  url = {https://www.deeplearningbook.org},
}
@inproceedings{abadi2016tensorflow,
  author = {Abadi, M. and others},
  title = {{TensorFlow}: a system for large-scale machine learning},
  booktitle = {OSDI},
  pages = {265--283},
  year = {2016},
}
@misc{blogpost,
  title = {{A Post -- Part 1}},
  howpublished = {Machine Learning Notebook blog},
}
@misc{uncited,
  author = {Nobody, N.},
  title = {Never cited},
  year = {2000},
}
"""

CITING = """(ch-citing)=
# Citing

A *post*{cite:empty}`blogpost`. Adam {cite:p}`kingma2015adam`; {cite:t}`lecun1998gradient` and
{cite:t}`goodfellow2016deep{chapter 9}`; both {cite:p}`kingma2015adam,abadi2016tensorflow`; the year
{cite:yearpar}`goodfellow2016deep`, {cite:p}`{see}lecun1998gradient{p. 3}`.

## References

{cite:empty}`goodfellow2016deep`

```{bibliography}
:filter: docname in docnames
```
"""


@pytest.fixture
def citing_book(tmp_path: Path) -> Path:
    """One chapter that cites works of a references.bib in every supported way, and ends with its bibliography."""
    write_book(tmp_path, [{"book/citing": CITING}])
    (tmp_path / "references.bib").write_text(REFERENCES_BIB)
    return tmp_path


def test_citations_become_author_year_text_as_the_book_shows_them(citing_book):
    markdown = markdown_of(citing_book, "book/citing")
    assert ("A *post*. Adam (Kingma and Ba, 2015); LeCun et al. (1998) and\nGoodfellow et al. (2016, chapter 9); "
            "both (Kingma and Ba, 2015; Abadi et al., 2016); the year\n(2016), (see LeCun et al., 1998, p. 3).") \
        in markdown
    assert "{cite" not in markdown and "blogpost" not in markdown


def test_bibliography_becomes_the_list_of_the_chapters_cited_works(citing_book):
    markdown = markdown_of(citing_book, "book/citing")
    references = markdown[markdown.index("## References"):]
    assert references == (
        "## References\n\n"
        "- *A Post – Part 1*. Machine Learning Notebook blog.\n"
        "- Abadi, M. et al. (2016). TensorFlow: a system for large-scale machine learning. *OSDI*, 265–283.\n"
        "- Goodfellow, I., Bengio, Y. & Courville, A. (2016). *Deep Learning*. MIT Press. "
        "<https://www.deeplearningbook.org>\n"
        "- Kingma, D. P. & Ba, J. (2015). Adam: a method for stochastic optimization. *ICLR*. "
        "[arXiv:1412.6980](https://arxiv.org/abs/1412.6980).\n"
        "- LeCun, Y., Bottou, L., Bengio, Y. & Haffner, P. (1998). Gradient-based learning applied to document "
        "recognition. *Proceedings of the IEEE*, 86(11), 2278–2324."
    )  # by author then year, the title standing in for a missing author; the uncited entry is left out


def test_cited_keys_are_in_order_of_first_citation(citing_book):
    notebook = jupytext.read(citing_book / "book/citing.md", fmt="md:myst")
    assert colab.cited_keys(notebook) == ("blogpost", "kingma2015adam", "lecun1998gradient", "goodfellow2016deep",
                                          "abadi2016tensorflow")


@pytest.mark.parametrize(("text", "message"), [
    ("{cite:p}`nowhere2020`", "book/citing.md: unknown citation key 'nowhere2020' in {cite:p}"),
    ("{cite:label}`kingma2015adam`", "unsupported role {cite:label}"),
    ("```{bibliography}\n:all:\n```", "a {bibliography} needs exactly ':filter: docname in docnames'"),
])
def test_citations_that_cannot_be_converted_raise_naming_them(citing_book, text, message):
    assert_conversion_refuses(citing_book, "book/citing", text, message)


def test_committed_notebooks_list_their_chapters_references():
    for notebook in NOTEBOOKS:
        cells = nbformat.reads(notebook.read_text(), as_version=4).cells
        markdown = "\n\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
        references = markdown[markdown.index("## References"):]
        assert re.search(r"^- .+\(\d{4}\)\. ", references, re.MULTILINE), f"{notebook.name}: no reference list"
        assert "{bibliography}" not in references and ":filter:" not in references


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_exists_and_is_in_sync_with_its_chapter(chapter):
    notebook = chapter.with_suffix(".ipynb")
    assert notebook.is_file(), f"{notebook.name} missing: run python tools/colab.py"
    expected = colab.notebook_text(colab.make_notebook(chapter))
    assert notebook.read_text() == expected, f"{notebook.name} is stale: run python tools/colab.py"
    parsed = nbformat.reads(expected, as_version=4)
    assert "colab-setup" in parsed.cells[0].metadata["tags"]
    assert all(not cell.get("outputs") for cell in parsed.cells if cell.cell_type == "code")


LINE_START = r"^(?:[ \t]*>)*[ \t]*"  # a line's start, in a blockquote or a list item too
#: A fenced code block (not a directive), also inside a blockquote or a list item.
FENCED_CODE = re.compile(r"(" + LINE_START + r")(`{3,}|~{3,})(?![ \t]*\{)[^\n]*\n.*?^\1\2[ \t]*$",
                         re.MULTILINE | re.DOTALL)
INLINE_CODE_OR_ROLE = re.compile(r"``[^\n]+?``|`[^`\n]+`|\{[A-Za-z][\w:.-]*\}`")
MYST_ONLY = {
    "directive fence": re.compile(LINE_START + r"(?:`{3,}|~{3,}|:{3,})[ \t]*\{", re.MULTILINE),
    "colon fence": re.compile(LINE_START + r":{3,}", re.MULTILINE),
    "directive option": re.compile(LINE_START + r":[\w-]+:", re.MULTILINE),
    "label": re.compile(LINE_START + r"\([^()\s]+\)=", re.MULTILINE),
    "substitution": re.compile(r"\{\{"),
    "labelled equation": re.compile(r"\$\$[ \t]*\([\w-]+\)"),
}


def myst_left(markdown: str) -> list[str]:
    """The MyST-only markup in ``markdown``, outside fenced and inline code (where ``{x}`` can be Python)."""
    text = FENCED_CODE.sub("", markdown)
    found = [match[0] for match in INLINE_CODE_OR_ROLE.finditer(text) if match[0].startswith("{")]
    text = INLINE_CODE_OR_ROLE.sub("", text)
    return found + [f"{what}: {match[0]!r}" for what, pattern in MYST_ONLY.items() for match in pattern.finditer(text)]


def test_myst_left_finds_myst_but_not_python_in_code():
    assert myst_left("See {ref}`x`.\n:::{note}\n:class: tip\n:::\n(a)=\n{{ s }}") == [
        "{ref}`", "directive fence: ':::{'", "colon fence: ':::'", "colon fence: ':::'",
        "directive option: ':class:'", "label: '(a)='", "substitution: '{{'"]
    assert myst_left('Code `f"{x}"` and\n```python\nprint(f"{y}`{{z}}")\n```\nand `{w}`.\n> ```\n> {v}`\n> ```') == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_have_no_myst_markup(notebook):
    text = notebook.read_text()
    assert "myst_nb" not in text and "mystnb" not in text
    parsed = nbformat.reads(text, as_version=4)
    for cell in parsed.cells:
        if cell.cell_type == "markdown":
            assert not myst_left(cell.source), f"{notebook.name} {cell.id}: {myst_left(cell.source)}"
    assert "printed by a code cell" not in text, "a glued value whose cell was not found"


#: What Colab's runtime has besides the standard library (and what the book's runtime pins).
COLAB_PACKAGES = {"numpy", "matplotlib", "IPython", "mlbook", "keras", "tensorflow", "sklearn", "scipy", "skimage",
                  "PIL", "platformdirs"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_import_only_what_colab_has(notebook):
    imported = set()
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "code":
            tree = ast.parse(re.sub(r"^([ \t]*)[%!]", r"\1#", cell.source, flags=re.MULTILINE))
            imported |= {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                         for alias in node.names}
            imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                         if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    assert imported - set(sys.stdlib_module_names) <= COLAB_PACKAGES


GPU_CHAPTERS = {"cnn-mnist", "inception", "augmentation", "autoencoders", "vae", "gan", "yolo", "style-transfer",
                "char-rnn"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapters_that_train_conv_recurrent_or_generative_models_ask_colab_for_a_gpu(notebook):
    metadata = nbformat.read(notebook, as_version=4).metadata
    if notebook.stem in GPU_CHAPTERS:
        assert metadata["accelerator"] == "GPU" and metadata["colab"]["gpuType"] == "T4"
    else:
        assert "accelerator" not in metadata


def test_a_changed_chapter_makes_its_notebook_stale(tmp_path):
    chapter = CHAPTERS[0]
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    shutil.copytree(REPO_ROOT / "book", tmp_path / "book")
    (tmp_path / "code").symlink_to(REPO_ROOT / "code")  # its literalincludes read the package
    edited = tmp_path / chapter.relative_to(REPO_ROOT)
    edited.write_text(chapter.read_text().replace("```{code-cell} ipython3\n", "```{code-cell} ipython3\nx = 1\n", 1))
    settings = colab.book_settings()
    regenerated = colab.notebook_text(colab.make_notebook(edited, settings, root=tmp_path))
    assert regenerated != chapter.with_suffix(".ipynb").read_text()


def test_setup_cell_installs_from_the_configured_repository():
    settings = colab.book_settings()
    source = colab.make_notebook(CHAPTERS[0]).cells[0].source
    assert f"git+{settings['url']}@{settings['branch']}#subdirectory=code" in source


def test_literalinclude_becomes_the_code_and_images_resolve_outside_the_book(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code/m.py").write_text(
        "import os\n\n\nclass Box:\n    @property\n    def size(self):\n        return 3\n")
    write_book(tmp_path, [{"book/ch": "# Ch\n\n```{literalinclude} ../code/m.py\n:language: python\n"
                                      ":pyobject: Box.size\n```\n\n"
                                      "![diagram](img/net.png) and ![web](https://example.org/a.png)\n"}])
    markdown = markdown_of(tmp_path, "book/ch")
    assert "```python\n@property\ndef size(self):\n    return 3\n```" in markdown
    assert "(https://raw.githubusercontent.com/org/repo/dev/book/img/net.png)" in markdown
    assert "(https://example.org/a.png)" in markdown
    with pytest.raises(ValueError, match="no object 'Box.width'"):
        colab.python_object_source(tmp_path / "code/m.py", "Box.width")


def test_figure_directives_are_numbered_with_figure_cells_in_document_order(tmp_path):
    body = (f"# Ch\n\n{FIGURE_CELL % ('From code.', 'fig-code')}\n```{{figure}} img/a.png\n:name: fig-directive\n"
            ":width: 50%\nFrom a file.\n```\n\n{numref}`fig-directive` follows {numref}`fig-code`.\n")
    write_book(tmp_path, [{"book/ch": body}])
    markdown = markdown_of(tmp_path, "book/ch")
    assert ("![](https://raw.githubusercontent.com/org/repo/dev/book/img/a.png)\n\n**Figure 1.2.** From a file."
            "\n\nFigure 1.2 follows Figure 1.1.") in markdown


EXERCISES = """(ch-drill)=
# Drill

{PLOT}
{numref}`ex-drill-sum` comes back in {ref}`ex-drill-code`, after {numref}`fig-third-plot`.

## Exercises

:::{exercise} a sum
:label: ex-drill-sum
Add $1 + 1$.
:::

:::{solution} ex-drill-sum
:class: dropdown
Two.
:::

:::{exercise} a warm-up
:label: ex-drill-warm-up
:nonumber:
Stretch.
:::

:::{exercise} code
:label: ex-drill-code
Write it.
:::

:::{solution} ex-drill-code
:class: dropdown
Like this:

```python
print(f"{x}`")
```
:::
"""


def test_exercises_are_numbered_per_chapter_and_solutions_become_details(tmp_path):
    write_book(tmp_path, [{"book/first": FIRST, "book/drill": EXERCISES.replace("{PLOT}", PLOT)},
                          {"book/third": "(ch-third)=\n# Third\n\nSee {numref}`ex-drill-code` and "
                                         "{ref}`ex-drill-sum`.\n"}])
    markdown = markdown_of(tmp_path, "book/drill")
    # chapter 2: numbered like its figures (2.1), but with a count of their own; :nonumber: takes no number
    assert "> **Exercise 2.1: a sum**\n>\n> Add $1 + 1$." in markdown
    assert "<details><summary>Solution</summary>\n\nTwo.\n\n</details>" in markdown
    assert "> **Exercise: a warm-up**\n>\n> Stretch." in markdown
    assert "> **Exercise 2.2: code**" in markdown
    assert "<details><summary>Solution</summary>\n\nLike this:\n\n```python\nprint(f\"{x}`\")\n```\n\n</details>" \
        in markdown  # the code fence inside the solution survives
    assert "Exercise 2.1 comes back in Exercise 2.2, after Figure 2.1." in markdown
    assert not myst_left(markdown)
    other = markdown_of(tmp_path, "book/third")
    assert (f"See [Exercise 2.2]({BASEURL}book/drill.html#ex-drill-code) and "
            f"[Exercise 2.1]({BASEURL}book/drill.html#ex-drill-sum).") in other


@pytest.mark.parametrize(("text", "message"), [
    (":::{exercise} unlabelled\nDo it.\n:::", "exercise 'unlabelled' has no :label:"),
    (":::{solution} ex-nowhere\n:class: dropdown\nDone.\n:::", "unknown label 'ex-nowhere' in {solution}"),
])
def test_exercises_without_a_label_and_solutions_to_no_exercise_raise(small_book, text, message):
    assert_conversion_refuses(small_book, "book/third", text, message)


def test_chapter_exercises_are_labelled_numbered_and_referenced_by_number():
    """Every chapter's exercises are sphinx-exercise directives, numbered n.1, n.2, ... in chapter n, and the
    prose refers to them by label, never by a typed number."""
    index, numbers = colab.book_index(), dict(colab.toc_pages())
    for chapter in CHAPTERS:
        docname = chapter.relative_to(REPO_ROOT).with_suffix("").as_posix()
        text = chapter.read_text()
        assert "{admonition} Exercise" not in text and not re.search(r"\bexercise \d", text, re.IGNORECASE), docname
        exercises = [label for label in index.labels.values() if label.docname == docname and label.kind == "exercise"]
        assert [label.number for label in exercises] == [f"{numbers[docname]}.{k}"
                                                         for k in range(1, len(exercises) + 1)], docname
        assert len(exercises) >= 3 and text.count(":::{solution} ") == len(exercises), docname


def test_repository_url_must_be_github(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://gitlab.com/org/repo\n")
    with pytest.raises(ValueError, match="github.com"):
        colab.book_settings(tmp_path)


def test_colab_run_points_the_setup_cell_at_a_local_checkout(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    notebook = colab_run.with_install_target(nbformat.read(NOTEBOOKS[0], as_version=4), "./code")
    assert notebook.cells[0].source.endswith(f'%pip install -q "{REPO_ROOT / "code"}"')  # the kernel runs elsewhere
    assert colab_run.with_install_target(notebook, "pkg==1").cells[0].source.endswith('%pip install -q "pkg==1"')
    notebook.cells[0].source = "print('no set-up')"
    with pytest.raises(ValueError, match="no %pip install"):
        colab_run.with_install_target(notebook, "./code")


def test_colab_run_reports_error_outputs_and_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PYTEST_CURRENT_TEST")  # ipykernel leaves stderr uncaptured when it sees this variable
    cells = [nbformat.v4.new_code_cell(source) for source in ("import os\nprint(os.getcwd())", "1 / 0", "print(1)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells[:1]), tmp_path / "good.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "bad.ipynb")
    result = colab_run.run_notebook(tmp_path / "good.ipynb")
    assert result.ok and "colab-run-" in result.notebook.cells[0].outputs[0]["text"]  # an empty working folder
    assert colab_run.main([str(tmp_path / "good.ipynb")]) == 0
    assert colab_run.main([str(tmp_path / "bad.ipynb")]) == 1
    assert colab_run.main(["--install", "./code", str(tmp_path / "good.ipynb")]) == 1
    printed = capsys.readouterr().out
    assert re.search(r"^good\.ipynb  [\d.]+ s  0 error\(s\)$", printed, re.MULTILINE)
    assert re.search(r"^bad\.ipynb  [\d.]+ s  1 error\(s\)\n  first error: ZeroDivisionError: division by zero$",
                     printed, re.MULTILINE)
    assert "good.ipynb  not run: the first cell has no %pip install" in printed


@pytest.mark.slow
def test_every_chapter_page_links_to_its_colab_notebook(built_book):
    settings = colab.book_settings()
    for chapter in CHAPTERS:
        relative = chapter.relative_to(REPO_ROOT).with_suffix("")
        page = (built_book / f"{relative}.html").read_text()
        links = set(re.findall(r'https://colab\.research\.google\.com/github/[^"\']+', page))
        expected = colab.colab_url(chapter.with_suffix(".ipynb"), settings)
        assert links == {expected}, f"{relative}: Colab links {links}"
        assert chapter.with_suffix(".ipynb").is_file()


@pytest.mark.slow
def test_figure_and_equation_numbers_match_the_built_book(built_book):
    """Every numbered figure and equation (and every numref to one) has, in the built page, the number the
    notebooks give it; every link from a notebook into the book reaches a page and an id that exist."""
    from bs4 import BeautifulSoup

    index = colab.book_index()
    pages: dict[str, BeautifulSoup] = {}

    def page(docname: str) -> BeautifulSoup:
        if docname not in pages:
            pages[docname] = BeautifulSoup((built_book / f"{docname}.html").read_text(), "html.parser")
        return pages[docname]

    checked = 0
    for name, label in index.labels.items():
        if label.kind not in ("figure", "equation") or not label.number:
            continue
        element = page(label.docname).find(id=label.anchor)
        assert element is not None, f"{label.docname}: no element with id {label.anchor!r} ({name})"
        shown = element.find(class_="caption-number" if label.kind == "figure" else "eqno")
        assert shown is not None, f"{label.docname}: {name} has no number in the page"
        assert re.search(r"[\d.]+\d", shown.get_text())[0] == label.number, f"{label.docname}: {name}"
        checked += 1
    assert checked > 100
    for chapter in CHAPTERS:
        docname = chapter.relative_to(REPO_ROOT).with_suffix("").as_posix()
        for span in page(docname).find_all("span", class_="std-numref"):
            anchor = span.find_parent("a")["href"].split("#")[-1]
            label = next(label for label in index.labels.values() if label.anchor == anchor)
            assert span.get_text().split()[-1] == label.number, f"{docname}: numref to {anchor}"
    base = colab.book_settings()["baseurl"]
    for notebook in NOTEBOOKS:
        for target in set(re.findall(re.escape(base) + r"([^)#\s]+)(?:#([^)\s]+))?\)", notebook.read_text())):
            path, anchor = target
            assert (built_book / path).is_file(), f"{notebook.name} links to a missing page {path}"
            if anchor:
                assert page(path.removesuffix(".html")).find(id=anchor), f"{notebook.name}: {path}#{anchor}"


# --- running the notebooks in a fresh environment, as Colab would -----------------------------------------------

class FreshKernel(NamedTuple):
    name: str  #: the kernelspec's name
    env: Path  #: the virtual environment
    jupyter_path: Path  #: a JUPYTER_PATH folder that holds the kernelspec
    seconds: float  #: how long making the environment took


@pytest.fixture(scope="session")
def fresh_kernel(tmp_path_factory: pytest.TempPathFactory) -> FreshKernel:
    """A fresh virtual environment with the runtime pins and ipykernel only (no book tooling, no mlbook), and a
    kernelspec that runs its Python."""
    folder = tmp_path_factory.mktemp("colab-venv")
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(folder / "env")], check=True)
    python = folder / "env/bin/python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REPO_ROOT / "requirements/runtime-cpu.txt"),
                    "ipykernel", "-c", str(REPO_ROOT / "requirements/constraints.txt")], check=True)
    kernel = folder / "share/jupyter/kernels/colab-fresh"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh runtime", "language": "python"}))
    return FreshKernel("colab-fresh", folder / "env", folder / "share/jupyter", time.monotonic() - start)


#: The NumPy chapter, and the shortest chapter that uses Keras (CNN basics: a 20 s quick budget).
RUNNABLE = ["book/foundations/numpy-nn.ipynb", "book/cnn/cnn-basics.ipynb"]
PROBE = ("import importlib.util, json, sys, mlbook\n"
         "print(json.dumps({'python': sys.executable, 'mlbook': mlbook.__file__,"
         " 'myst_nb': importlib.util.find_spec('myst_nb') is not None}))")


@pytest.mark.slow
@pytest.mark.parametrize("notebook", RUNNABLE, ids=lambda p: Path(p).stem)
def test_notebook_runs_top_to_bottom_in_a_fresh_environment(notebook, fresh_kernel, monkeypatch, capsys):
    """The committed notebook, its own first cell installing mlbook from this checkout into the fresh kernel's
    environment (no dependencies: the runtime pins are there, with tensorflow-cpu for the `tensorflow` that
    pyproject.toml names, as Colab has it preinstalled)."""
    monkeypatch.setenv("JUPYTER_PATH", str(fresh_kernel.jupyter_path))
    monkeypatch.setenv("PIP_NO_DEPS", "1")
    monkeypatch.delenv("PYTEST_CURRENT_TEST")  # ipykernel leaves stderr uncaptured when it sees this variable
    prepared = colab_run.with_install_target(nbformat.read(REPO_ROOT / notebook, as_version=4), str(REPO_ROOT / "code"))
    prepared.cells.append(nbformat.v4.new_code_cell(PROBE))
    result = colab_run.execute(prepared, Path(notebook).name, fresh_kernel.name, timeout=900)
    with capsys.disabled():
        print(f"\n[colab] fresh virtual environment: {fresh_kernel.seconds:.0f} s; {result.summary()}")
    assert result.ok, result.summary()
    probe = json.loads("".join(output.get("text", "") for output in result.notebook.cells[-1].outputs
                               if output.get("name") == "stdout"))
    assert probe["python"].startswith(str(fresh_kernel.env)), f"the kernel is not the fresh environment's: {probe}"
    assert probe["mlbook"].startswith(str(fresh_kernel.env)), f"mlbook was not imported from the fresh install: {probe}"
    assert not probe["myst_nb"], "myst_nb is importable in the fresh kernel"
    compared = [cell for cell in result.notebook.cells if colab.COMPARE_CELL_TAG in cell.metadata.get("tags", [])]
    if compared:  # the reader's own numbers, set beside the book's (from the package data of the fresh install)
        text = "".join(output.get("text", "") for output in compared[0].outputs if output.get("name") == "stdout")
        assert "beside the book's build" in text and "✓" in text, text
        assert "✗" not in text and "not recorded" not in text, text


def test_each_chapter_with_headline_numbers_ends_by_comparing_the_run_with_the_book():
    with_numbers = colab.chapters_with_numbers(REPO_ROOT)
    assert len(with_numbers) >= 13
    for chapter in colab.chapter_sources():
        docname = chapter.relative_to(REPO_ROOT).with_suffix("").as_posix()
        cells = nbformat.read(chapter.with_suffix(".ipynb"), as_version=4).cells
        tagged = [cell for cell in cells if colab.COMPARE_CELL_TAG in cell.metadata.get("tags", [])]
        if docname not in with_numbers:
            assert not tagged, docname
            continue
        assert tagged == [cells[-1]], f"{docname}: the comparison is not the last cell"
        assert cells[-1].source.endswith(f'compare_with_book("{docname}")')
        assert cells[-2].source.startswith("## Did your run match the book?")

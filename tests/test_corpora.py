import textwrap

import pytest

from mlbook import cache, corpora


def write(path, source):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


@pytest.fixture
def library(tmp_path):
    write(tmp_path / "alpha.py", '''
        """Alpha module docstring, long enough to keep."""
        class Widget:
            """A widget class with a docstring of some length."""
            def spin(self):
                """Spin the widget around its own axis quickly."""
            def tiny(self):
                """Short."""
        ''')
    write(tmp_path / "pkg/__init__.py", '"""The package docstring, which is long enough too."""\n')
    write(tmp_path / "pkg/_private.py", 'async def go():\n    """An async function documented at length."""\n')
    write(tmp_path / "test/test_alpha.py", '"""Tests are not part of the library and are skipped."""\n')
    write(tmp_path / "broken.py", '"""Never read: the file does not parse."""\ndef (:\n')
    return tmp_path


def test_read_docstrings_reads_sources_not_imports(library):
    documents = corpora.read_docstrings(library, min_chars=20)
    assert [(d.module, d.name) for d in documents] == [
        ("alpha", "<module>"), ("alpha", "Widget"), ("alpha", "spin"), ("pkg", "<module>"), ("pkg._private", "go"),
    ]  # sorted by file, in source order; "Short." is under min_chars; test/ and broken.py are skipped
    assert {d.package for d in documents} == {"alpha", "pkg"}


def test_read_docstrings_names_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        corpora.read_docstrings(tmp_path / "nowhere")


def test_to_text8_keeps_lowercase_letters_and_single_spaces():
    assert corpora.to_text8("Return the ASCII-code of x_1,\n  e.g. 'A' -> 65.") == "return the ascii code of x e g a"


def test_stdlib_docstrings_are_real_and_cached_on_disk():
    corpora.stdlib_docstrings.cache_clear()
    documents = corpora.stdlib_docstrings()
    # The standard library has thousands of docstrings; the email and logging packages are always there.
    assert len(documents) > 2000 and {"email", "logging"} <= {d.package for d in documents}
    assert all(len(d.text) >= 40 for d in documents)
    assert any(cache.cache_dir().glob("stdlib-docstrings-*.npz"))
    corpora.stdlib_docstrings.cache_clear()
    assert corpora.stdlib_docstrings() == documents  # from the disk cache, identical
    text = corpora.stdlib_text8()
    assert len(text) > 500_000 and set(text) <= set("abcdefghijklmnopqrstuvwxyz ")

"""Claims checked by the run (mlbook.claims)."""

import pytest

from mlbook.claims import ClaimError, comparison_word, require


def test_a_true_claim_passes_and_a_false_one_stops_with_the_sentence():
    require(0.97 > 0.5, "the network beats chance")
    with pytest.raises(ClaimError, match="the text claims 'augmentation helps', which this run contradicts"):
        require(0.81 > 0.83, "augmentation helps")


def test_a_claim_error_is_an_assertion_error():
    assert issubclass(ClaimError, AssertionError)


@pytest.mark.parametrize(("value", "reference", "word"), [(0.1, 0.2, "lower"), (0.3, 0.2, "higher"),
                                                           (0.2, 0.2, "the same as")])
def test_comparison_word_follows_the_numbers(value, reference, word):
    assert comparison_word(value, reference) == word


def test_comparison_word_takes_the_chapters_own_words():
    assert comparison_word(2.4, 2.6, below="better", above="worse") == "better"


@pytest.mark.book
def test_flipping_a_setting_of_a_real_chapter_stops_it_at_the_claim_it_falsifies():
    """The NumPy chapter claims that momentum ends XOR with a lower error than plain gradient descent. Run the chapter
    itself, as the build does, with its momentum set to 0: both runs are then the same, and the chapter must stop at
    that claim instead of printing the sentence."""
    from pathlib import Path

    import jupytext
    import nbclient
    import nbformat

    from conftest import build_environment

    root = Path(__file__).resolve().parents[1]
    notebook = jupytext.read(root / "book/foundations/numpy-nn.md")
    setup = next(i for i, cell in enumerate(notebook.cells) if "setup_chapter(" in cell.source)
    flip = ("import dataclasses\n"
            "numpy_nn.SETTINGS['quick'] = dataclasses.replace(numpy_nn.SETTINGS['quick'], xor_momentum=0.0)")
    notebook.cells.insert(setup, nbformat.v4.new_code_cell(flip))
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(root / "book/foundations")}})
    with pytest.raises(nbclient.exceptions.CellExecutionError) as failure:
        client.execute(env=build_environment(MLBOOK_PROFILE="quick"))
    assert "ClaimError" in str(failure.value)
    claim = str(failure.value).split("ClaimError", 1)[1]
    assert "the text claims" in claim and "momentum" in claim, claim[:300]

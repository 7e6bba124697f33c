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

"""Claims: sentences about a result, checked by the run that produced the result.

A notebook's prose may say "the augmented model beats the plain one" only while the numbers on the page agree.
:func:`require` turns such a sentence into a check that stops the notebook (and so fails a build that executes
it) with a message quoting the sentence; :func:`comparison_word` lets code choose the word instead, so that the
sentence is true whichever way the run goes.
"""

from __future__ import annotations


class ClaimError(AssertionError):
    """A sentence that the text makes about a result is false for this run."""


def require(holds: bool, claim: str) -> None:
    """Stop with :class:`ClaimError` quoting ``claim`` unless ``holds``.

    Args:
        holds: whether the claim is true for the numbers of this run.
        claim: the sentence, or its gist, as the text states it.

    Raises:
        ClaimError: if ``holds`` is false.
    """
    if not holds:
        raise ClaimError(f"the text claims {claim!r}, which this run contradicts")


def comparison_word(value: float, reference: float, below: str = "lower", above: str = "higher",
                    same: str = "the same as") -> str:
    """The word that compares ``value`` with ``reference``: ``below``, ``above``, or ``same`` when they are equal."""
    if value < reference:
        return below
    if value > reference:
        return above
    return same

import dataclasses

import matplotlib as mpl
import numpy as np
import pytest

from mlbook import setup_chapter
from mlbook.plot import BOOK_STYLE


@dataclasses.dataclass(frozen=True)
class Sizes:
    num_epochs: int


SETTINGS = {"quick": Sizes(2), "full": Sizes(50)}


def test_setup_chapter_picks_profile_seeds_and_styles(monkeypatch):
    monkeypatch.setenv("MLBOOK_PROFILE", "full")
    with mpl.rc_context():
        ctx = setup_chapter(SETTINGS, seed=11, tensorflow=False)
        assert mpl.rcParams["figure.facecolor"] == BOOK_STYLE["figure.facecolor"]
    first = np.random.rand()
    assert ctx.profile == "full" and ctx.cfg.num_epochs == 50 and ctx.seed == 11
    assert ctx.describe() == "profile=full seed=11 | num_epochs=50"
    with mpl.rc_context():
        setup_chapter(SETTINGS, seed=11, tensorflow=False)
    assert np.random.rand() == first


def test_setup_chapter_rejects_unknown_profile(monkeypatch):
    monkeypatch.setenv("MLBOOK_PROFILE", "turbo")
    with pytest.raises(ValueError, match="quick, full"):
        setup_chapter(SETTINGS, tensorflow=False)


def test_importing_mlbook_changes_no_plot_style():
    import importlib

    import mlbook.plot

    with mpl.rc_context():
        before = dict(mpl.rcParams)
        importlib.reload(mlbook.plot)
        assert dict(mpl.rcParams) == before

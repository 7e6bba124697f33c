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
    assert ctx.describe() == "profile=full seed=11\nnum_epochs=50"
    with mpl.rc_context():
        setup_chapter(SETTINGS, seed=11, tensorflow=False)
    assert np.random.rand() == first


@dataclasses.dataclass(frozen=True)
class ManySettings:
    learning_rate: float = 0.001
    hidden_units: tuple[int, ...] = (256, 128, 64)
    corpus_name: str = "the standard library's docstrings, " * 4
    num_epochs: int = 12


def test_describe_wraps_settings_to_the_width_of_an_output_box():
    from mlbook.runtime import ChapterContext

    text = ChapterContext("quick", 7, ManySettings()).describe(width=40)
    lines = text.splitlines()
    assert lines[0] == "profile=quick seed=7"
    assert ", ".join(line.rstrip(",") for line in lines[1:]) == (
        "learning_rate=0.001, hidden_units=(256, 128, 64), corpus_name="
        + repr(ManySettings.corpus_name) + ", num_epochs=12")
    long_line = [line for line in lines if "corpus_name" in line]
    assert long_line == [f"corpus_name={ManySettings.corpus_name!r},"]  # too long to share a line
    assert all(len(line) <= 40 for line in lines if "corpus_name" not in line)


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


@dataclasses.dataclass(frozen=True)
class Hidden:
    num_steps: int
    learning_rate: float


@dataclasses.dataclass(frozen=True)
class Nested:
    grid_size: int
    temperatures: tuple[float, ...]
    optimizer: str
    hidden: Hidden
    plot: bool = True


def recorded_by_setup(monkeypatch, settings):
    import mlbook.runtime

    recorded = {}
    monkeypatch.setattr(mlbook.runtime, "record", lambda name, value: recorded.__setitem__(name, value))
    monkeypatch.setenv("MLBOOK_PROFILE", "quick")
    with mpl.rc_context():
        ctx = setup_chapter(settings, tensorflow=False)
    return ctx, recorded


def test_setup_chapter_records_every_setting_under_its_glue_name(monkeypatch):
    from mlbook.runtime import CONDITIONS_KEY

    cfg = Nested(grid_size=12, temperatures=(0.5, 1.0), optimizer="adam", hidden=Hidden(300, 0.01))
    ctx, recorded = recorded_by_setup(monkeypatch, {"quick": cfg, "full": Nested(1, (), "sgd", Hidden(1, 1.0))})
    assert ctx.cfg is cfg
    assert recorded.pop(CONDITIONS_KEY)["profile"] == "quick"
    assert recorded == {"cfg_grid_size": 12, "cfg_temperatures": (0.5, 1.0), "cfg_optimizer": "adam",
                        "cfg_hidden_num_steps": 300, "cfg_hidden_learning_rate": 0.01, "cfg_plot": True}


def test_setup_chapter_records_no_setting_for_a_chapter_without_settings(monkeypatch):
    from mlbook.runtime import CONDITIONS_KEY

    _, recorded = recorded_by_setup(monkeypatch, {"quick": None, "full": None})
    assert list(recorded) == [CONDITIONS_KEY]


def test_settings_glue_rejects_two_settings_with_one_name():
    from mlbook.runtime import settings_glue

    @dataclasses.dataclass(frozen=True)
    class Clash:
        hidden: Hidden
        hidden_num_steps: int

    with pytest.raises(ValueError, match="cfg_hidden_num_steps"):
        settings_glue(Clash(Hidden(1, 0.1), 2))

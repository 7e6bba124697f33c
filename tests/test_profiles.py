import pytest

from mlbook.profiles import PROFILES, current_profile, resolve_profile, select, validate_profile

SETTINGS = {"quick": "small", "full": "large"}


def test_default_profile_is_quick():
    assert current_profile() == "quick"
    assert select(SETTINGS) == "small"


@pytest.mark.parametrize("value, expected", [("full", "full"), (" FULL ", "full"), ("quick", "quick"), ("", "quick")])
def test_profile_from_environment(monkeypatch, value, expected):
    monkeypatch.setenv("MLBOOK_PROFILE", value)
    assert current_profile() == expected
    assert select(SETTINGS) == {"quick": "small", "full": "large"}[expected]


def test_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("MLBOOK_PROFILE", "fast")
    with pytest.raises(ValueError) as error:
        current_profile()
    message = str(error.value)
    assert "'fast'" in message and all(name in message for name in PROFILES)


def test_explicit_profile_overrides_environment(monkeypatch):
    monkeypatch.setenv("MLBOOK_PROFILE", "full")
    assert select(SETTINGS, "quick") == "small"
    with pytest.raises(ValueError, match="valid profiles are"):
        validate_profile("medium")


def test_settings_must_cover_every_profile():
    with pytest.raises(KeyError, match="full"):
        select({"quick": 1})


def test_resolve_profile_reads_the_environment_only_when_no_profile_is_given(monkeypatch):
    monkeypatch.setenv("MLBOOK_PROFILE", "full")
    assert resolve_profile() == "full"
    assert resolve_profile(" Quick ") == "quick"
    with pytest.raises(ValueError, match="valid profiles are: quick, full"):
        resolve_profile("huge")

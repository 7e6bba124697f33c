"""Build profiles: ``quick`` (offline, a 2-core CPU) and ``full`` (real datasets and epochs, a GPU runner).

Every chapter keeps its sizes (samples, epochs, iterations...) in one frozen dataclass per profile, side by side
in the chapter's module, and picks the current one with :func:`select`::

    SETTINGS = {"quick": XorSettings(num_iterations=20_000), "full": XorSettings(num_iterations=100_000)}
    cfg = select(SETTINGS)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

PROFILE_ENV_VAR = "MLBOOK_PROFILE"
PROFILES: tuple[str, ...] = ("quick", "full")
DEFAULT_PROFILE = "quick"

T = TypeVar("T")


def validate_profile(name: str) -> str:
    """Return ``name`` normalised, or raise a ``ValueError`` that lists the valid profiles."""
    normalised = name.strip().lower()
    if normalised not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} (from {PROFILE_ENV_VAR}); valid profiles are: {', '.join(PROFILES)}"
        )
    return normalised


def current_profile() -> str:
    """The profile chosen by the ``MLBOOK_PROFILE`` environment variable (``quick`` when unset or empty)."""
    return validate_profile(os.environ.get(PROFILE_ENV_VAR) or DEFAULT_PROFILE)


def resolve_profile(profile: str | None = None) -> str:
    """``profile`` validated, or :func:`current_profile` when it is ``None``: the one way every function that
    takes an optional profile reads it."""
    return current_profile() if profile is None else validate_profile(profile)


def select(settings: Mapping[str, T], profile: str | None = None) -> T:
    """Pick a chapter's settings for ``profile`` (default: :func:`current_profile`).

    Raises:
        ValueError: if the profile is unknown.
        KeyError: if ``settings`` has no entry for a valid profile (a chapter forgot one).
    """
    name = resolve_profile(profile)
    missing = [p for p in PROFILES if p not in settings]
    if missing:
        raise KeyError(f"chapter settings have no entry for profile(s) {missing}; every profile needs one")
    return settings[name]

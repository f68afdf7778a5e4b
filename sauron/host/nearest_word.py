"""The word a person most likely meant: configuration keys, commands and
their choices, slice names. Kept apart from the configuration's error
reports so that the CLI offers it without importing pydantic."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(word: str, known: Iterable[str]) -> str | None:
    """The known word a mistyped one most likely meant, if any is close."""
    near = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return near[0] if near else None

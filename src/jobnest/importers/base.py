"""What every importer returns, and how it makes valid, unique names out of arbitrary text."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from jobnest.model.job import MAX_NAME, Job


@dataclass(frozen=True)
class Imported:
    """Jobs converted from another tool, and what could not be carried over as it was."""

    jobs: tuple[Job, ...]
    notes: tuple[str, ...] = ()


def clean_name(text: str, fallback: str) -> str:
    """``text`` made a valid name: '/' between words becomes '-' (``/usr/bin/x`` gives
    ``usr-bin-x``), control characters and runs of whitespace one space, at most
    ``MAX_NAME`` characters; ``fallback`` if nothing is left.
    """
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    text = " ".join(text.strip().strip("/").replace("/", "-").split())
    return text[:MAX_NAME].rstrip() or fallback


class UniqueNames:
    """Hands out names unique among those already taken: ``backup``, ``backup-2``, ..."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken = set(taken)

    def claim(self, wanted: str) -> str:
        """``wanted``, or ``wanted`` with the first free ``-N`` suffix; then taken."""
        name, number = wanted, 1
        while name in self._taken:
            number += 1
            suffix = f"-{number}"
            name = wanted[: MAX_NAME - len(suffix)] + suffix
        self._taken.add(name)
        return name

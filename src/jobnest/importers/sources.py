"""Reading what the importers convert: files, or stdin for ``-``. Every error names the file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from jobnest.errors import InvalidInput

STDIN = "-"


def read_text(path: str) -> str:
    """The UTF-8 text of ``path``, or of stdin when ``path`` is ``-``.

    Raises:
        InvalidInput: no such file, unreadable, or not UTF-8.
    """
    try:
        if path == STDIN:
            return sys.stdin.buffer.read().decode("utf-8")
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{_label(path)}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InvalidInput(f"{_label(path)}: cannot read: {exc.strerror}") from None


def read_json(path: str) -> Any:
    """The decoded JSON of ``path``. Raises InvalidInput naming the file and line."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{_label(path)}:{exc.lineno}: invalid JSON: {exc.msg}") from None


def read_yaml(path: str) -> Any:
    """The decoded YAML of ``path``. Raises InvalidInput naming the file and line."""
    try:
        return yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise InvalidInput(f"{_label(path)}{line}: invalid YAML: {problem}") from None


def _label(path: str) -> str:
    return "stdin" if path == STDIN else path

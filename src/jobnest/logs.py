"""Reading an attempt's output files by head, tail or byte range, without loading them whole."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

CHUNK = 64 * 1024


def read_range(path: Path, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
    """The bytes from ``offset`` (negative: from the end), ``length`` of them or all, in chunks."""
    if not path.exists():
        return
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        start = max(0, size + offset) if offset < 0 else min(offset, size)
        file.seek(start)
        left = size - start if length is None else min(length, size - start)
        while left > 0:
            chunk = file.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def head(path: Path, lines: int) -> bytes:
    """The first ``lines`` lines."""
    out = bytearray()
    for chunk in read_range(path):
        out += chunk
        if out.count(b"\n") >= lines:
            break
    return bytes(_first_lines(out, lines))


def tail(path: Path, lines: int) -> bytes:
    """The last ``lines`` lines, read backwards from the end in blocks."""
    if lines <= 0 or not path.exists():
        return b""
    with path.open("rb") as file:
        end = os.fstat(file.fileno()).st_size
        data = b""
        position = end
        while position > 0 and data.count(b"\n") <= lines:
            step = min(CHUNK, position)
            position -= step
            file.seek(position)
            data = file.read(step) + data
    return _last_lines(data, lines)


def _first_lines(data: bytearray, lines: int) -> bytearray:
    if lines <= 0:
        return bytearray()
    cut = -1
    for _ in range(lines):
        cut = data.find(b"\n", cut + 1)
        if cut < 0:
            return data
    return data[: cut + 1]


def _last_lines(data: bytes, lines: int) -> bytes:
    body = data[:-1] if data.endswith(b"\n") else data
    parts = body.split(b"\n")
    kept = b"\n".join(parts[-lines:])
    return kept + b"\n" if data.endswith(b"\n") else kept

"""Reading an attempt's output files by head, tail or byte range, without loading them whole.

``head_length`` and ``tail_offset`` turn a count of lines into a byte range, so that a
server can stream the lines with ``read_range`` however long they are.
"""

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


def head_length(path: Path, lines: int) -> int:
    """How many bytes the first ``lines`` lines take: stream them with ``read_range``."""
    if lines <= 0:
        return 0
    seen = 0
    position = 0
    for chunk in read_range(path):
        cut = -1
        while seen < lines and (cut := chunk.find(b"\n", cut + 1)) >= 0:
            seen += 1
        if seen == lines:
            return position + cut + 1
        position += len(chunk)
    return position


def tail_offset(path: Path, lines: int) -> int:
    """Where the last ``lines`` lines begin, found reading backwards a block at a time."""
    if not path.exists():
        return 0
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        if lines <= 0:
            return size
        file.seek(max(0, size - 1))
        end = size - 1 if file.read(1) == b"\n" else size  # a final newline ends, not splits
        seen = 0
        while end > 0:
            start = max(0, end - CHUNK)
            file.seek(start)
            block = file.read(end - start)
            cut = len(block)
            while (cut := block.rfind(b"\n", 0, cut)) >= 0:
                seen += 1
                if seen == lines:
                    return start + cut + 1
            end = start
    return 0


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

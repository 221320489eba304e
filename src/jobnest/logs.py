"""Reading an attempt's output files by head, tail or byte range, without loading them whole.

``head_length`` and ``tail_offset`` turn a count of lines into a byte range, so that a
server can stream the lines with ``read_range`` however long they are.

An output that went over its cap has a hole in its middle (see ``logcap``). Readers skip
holes and show each as one line saying how many bytes were dropped there; offsets remain
those of the file, so a reader following it by offset goes on across the hole. A line cut
short by a hole ends there: the dropped-bytes line starts a line of its own.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 64 * 1024
DROPPED = "[jobnest: {} bytes dropped here: the output went over its cap per stream]\n"


@dataclass(frozen=True)
class _Piece:
    """Bytes ``start`` to ``stop`` of a file: their data, or for a hole, the line saying so."""

    start: int
    stop: int
    text: bytes
    hole: bool = False


def read_range(path: Path, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
    """The bytes from ``offset`` (negative: from the end), ``length`` of them or all, in chunks.

    A hole comes as one line telling how many of the bytes asked for were dropped, so the
    text is not as long as the bytes it stands for: to read on, count the bytes asked for.
    """
    if not path.exists():
        return
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        start = max(0, size + offset) if offset < 0 else min(offset, size)
        stop = size if length is None else start + min(length, size - start)
        for piece in _pieces(file.fileno(), start, stop):
            yield piece.text


def read_piece(path: Path, offset: int) -> tuple[bytes, int]:
    """The text at ``offset``, and how many of the file's bytes it stands for: at most a
    chunk of data, or a whole dropped part as its one line; ``(b"", 0)`` at the end.

    For followers: reading on at ``offset + count`` crosses a dropped part in one step.
    """
    if not path.exists():
        return b"", 0
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        for piece in _pieces(file.fileno(), min(offset, size), size):
            return piece.text, piece.stop - piece.start
    return b"", 0


def head(path: Path, lines: int) -> bytes:
    """The first ``lines`` lines."""
    return b"".join(read_range(path, 0, head_length(path, lines)))


def tail(path: Path, lines: int) -> bytes:
    """The last ``lines`` lines."""
    return b"".join(read_range(path, tail_offset(path, lines)))


def head_length(path: Path, lines: int) -> int:
    """How many bytes the first ``lines`` lines take: stream them with ``read_range``."""
    if lines <= 0 or not path.exists():
        return 0
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        seen = 0
        for piece in _pieces(file.fileno(), 0, size):
            count = piece.text.count(b"\n")
            if seen + count >= lines:
                return _after(piece, _nth_newline(piece.text, lines - seen))
            seen += count
    return size


def tail_offset(path: Path, lines: int) -> int:
    """Where the last ``lines`` lines begin, found reading backwards a block at a time."""
    if not path.exists():
        return 0
    with path.open("rb") as file:
        fd = file.fileno()
        size = os.fstat(fd).st_size
        if lines <= 0:
            return size
        end = size - 1 if os.pread(fd, 1, max(0, size - 1)) == b"\n" else size  # ends, not splits
        seen = 0
        for piece in _pieces_backwards(fd, end):
            count = piece.text.count(b"\n")
            if seen + count >= lines:
                return _after(piece, _nth_newline_from_end(piece.text, lines - seen))
            seen += count
    return 0


def _pieces(fd: int, start: int, stop: int) -> Iterator[_Piece]:
    """Bytes ``start`` to ``stop`` of ``fd`` in order: data in chunks, and each hole whole."""
    position = start
    while position < stop:
        hole = _seek(fd, position, os.SEEK_HOLE, stop)
        if hole == position:
            data = _seek(fd, position, os.SEEK_DATA, stop)
            yield _hole(fd, position, data, opens=position == start)
            position = data
            continue
        text = os.pread(fd, min(CHUNK, hole - position), position)
        if not text:  # the file was cut short meanwhile
            return
        yield _Piece(position, position + len(text), text)
        position += len(text)


def _pieces_backwards(fd: int, stop: int) -> Iterator[_Piece]:
    """Bytes 0 to ``stop`` of ``fd``, the last piece first, a chunk of data at a time."""
    while stop > 0:
        start = max(0, stop - CHUNK)
        pieces = list(_pieces(fd, start, stop))
        if not pieces:
            return
        if pieces[0].hole:  # it may begin before this chunk does
            begin = _hole_start(fd, start)
            pieces[0] = _hole(fd, begin, pieces[0].stop, opens=begin == 0)
        yield from reversed(pieces)
        stop = pieces[0].start


def _hole(fd: int, start: int, stop: int, *, opens: bool) -> _Piece:
    """The line standing for a hole; after the middle of a line, on a line of its own."""
    text = DROPPED.format(stop - start).encode()
    if not opens and os.pread(fd, 1, start - 1) != b"\n":
        text = b"\n" + text
    return _Piece(start, stop, text, hole=True)


def _hole_start(fd: int, position: int) -> int:
    """Where the hole holding byte ``position`` begins: where the data before it ends, or 0."""
    step = CHUNK
    probe = max(0, position - step)
    while probe > 0 and _seek(fd, probe, os.SEEK_DATA, position) == position:
        step *= 2
        probe = max(0, position - step)
    begin = probe  # the data before the hole, if any, is between probe and position
    data = _seek(fd, probe, os.SEEK_DATA, position)
    while data < position:
        begin = _seek(fd, data, os.SEEK_HOLE, position)
        data = _seek(fd, begin, os.SEEK_DATA, position)
    return begin


def _seek(fd: int, position: int, whence: int, stop: int) -> int:
    """Where the next data or hole (``whence``) from ``position`` on begins, at most ``stop``."""
    try:
        return min(os.lseek(fd, position, whence), stop)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: no data from position on
            raise
        return stop


def _after(piece: _Piece, cut: int) -> int:
    """The file offset just after the newline at ``cut`` of the piece's text."""
    if not piece.hole:
        return piece.start + cut + 1
    return piece.stop if cut == len(piece.text) - 1 else piece.start


def _nth_newline(text: bytes, n: int) -> int:
    cut = -1
    for _ in range(n):
        cut = text.find(b"\n", cut + 1)
    return cut


def _nth_newline_from_end(text: bytes, n: int) -> int:
    cut = len(text)
    for _ in range(n):
        cut = text.rfind(b"\n", 0, cut)
    return cut

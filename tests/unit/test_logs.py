"""Lines to byte ranges: ``head_length`` and ``tail_offset`` agree with ``head`` and ``tail``."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobnest import logs

LONG = b"x" * (logs.CHUNK * 2 + 7)
SAMPLES = [
    b"",
    b"\n",
    b"one",
    b"one\n",
    b"one\ntwo",
    b"one\ntwo\n",
    b"\n\n\n",
    LONG + b"\n" + LONG + b"\nshort\n" + LONG,
    (b"line\n" * 30_000),
]


@pytest.mark.parametrize("data", SAMPLES, ids=range(len(SAMPLES)))
def test_the_ranges_hold_the_same_lines_as_head_and_tail(tmp_path: Path, data: bytes) -> None:
    file = tmp_path / "stdout"
    file.write_bytes(data)
    for lines in (0, 1, 2, 3, 29_999, 50_000):
        head = b"".join(logs.read_range(file, 0, logs.head_length(file, lines)))
        tail = b"".join(logs.read_range(file, logs.tail_offset(file, lines)))
        assert head == logs.head(file, lines), lines
        assert tail == logs.tail(file, lines), lines


def test_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert logs.head_length(tmp_path / "none", 5) == 0
    assert logs.tail_offset(tmp_path / "none", 5) == 0

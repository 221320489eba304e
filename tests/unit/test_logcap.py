"""Capped output files: ``logcap.trim`` punches out their middle, ``logs`` reads across the hole.

Real files in ``tmp_path`` (ext4 or tmpfs, which both punch holes).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobnest import logcap, logs
from jobnest.config import load_settings
from jobnest.errors import InvalidInput

CAP = 1024 * 1024
HOLE = 4096 * 2  # the hole of the hand-made files begins here


def numbered_lines(first: int, size: int) -> bytes:
    """Lines ``line 00000001`` and on, ``size`` bytes of them (the last one may be cut)."""
    count = size // 14 + 1
    return b"".join(b"line %08d\n" % n for n in range(first, first + count))[:size]


def disk_usage(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def dropped(count: int) -> bytes:
    return logs.DROPPED.format(count).encode()


def sparse(path: Path, before: bytes, hole: int, after: bytes) -> None:
    """``before`` (whole blocks of it), then a hole of ``hole`` bytes, then ``after``."""
    with path.open("wb") as file:
        file.write(before)
        os.pwrite(file.fileno(), after, len(before) + hole)


def test_the_cap_is_a_setting_of_whole_bytes(tmp_path: Path) -> None:
    env = {"JOBNEST_HOME": str(tmp_path)}
    assert load_settings(env).log_cap_bytes == 2**30
    assert load_settings(env | {"JOBNEST_LOG_CAP_BYTES": "65536"}).log_cap_bytes == 65536
    (tmp_path / "config.toml").write_text("log_cap_bytes = 0\n")
    assert load_settings(env).log_cap_bytes == 0
    for wrong in ("-1", "1.5", "1G"):
        with pytest.raises(InvalidInput, match="log_cap_bytes"):
            load_settings(env | {"JOBNEST_LOG_CAP_BYTES": wrong})


def test_trim_keeps_the_head_and_the_tail_within_the_cap(tmp_path: Path) -> None:
    file = tmp_path / "stdout"
    data = numbered_lines(1, 3 * CAP)
    file.write_bytes(data)

    freed = logcap.trim(file, CAP)

    block = os.stat(file).st_blksize
    assert freed >= 2 * CAP - 2 * block
    assert os.stat(file).st_size == len(data)  # offsets stay those the task wrote at
    assert disk_usage(file) <= CAP + 4 * block
    with file.open("rb") as kept:
        assert kept.read(CAP // 2) == data[: CAP // 2]
        kept.seek(-CAP // 2, os.SEEK_END)
        assert kept.read() == data[-CAP // 2 :]


def test_a_writer_goes_on_at_its_offset_and_a_second_trim_frees_only_the_new_middle(
    tmp_path: Path,
) -> None:
    file = tmp_path / "stdout"
    more = b"more\n" * (CAP // 4)
    with file.open("wb", buffering=0) as writer:
        writer.write(numbered_lines(1, 3 * CAP))
        first = logcap.trim(file, CAP)
        writer.write(more)  # at the writer's own offset, past the hole
        second = logcap.trim(file, CAP)
        assert logcap.trim(file, CAP) == 0  # nothing new to free
    block = os.stat(file).st_blksize
    assert first > 0
    assert abs(second - len(more)) <= 2 * block
    assert os.stat(file).st_size == 3 * CAP + len(more)
    assert disk_usage(file) <= CAP + 4 * block
    assert b"".join(logs.read_range(file, -10)) == b"more\n" * 2


def test_a_file_within_its_cap_or_missing_is_left_alone(tmp_path: Path) -> None:
    file = tmp_path / "stdout"
    file.write_bytes(b"x" * CAP)
    assert logcap.trim(file, CAP) == 0
    assert disk_usage(file) >= CAP
    assert logcap.trim(tmp_path / "missing", CAP) == 0


def test_what_cannot_be_trimmed_is_left_alone_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "stdout"  # not a file: it cannot be opened for writing
    folder.mkdir()
    assert logcap.trim(folder, 1) == 0
    assert "cannot trim the output to its cap" in caplog.text


def test_read_range_shows_the_hole_as_one_line_after_the_cut_line(tmp_path: Path) -> None:
    file = tmp_path / "stdout"
    before = b"a" * 99 + b"\n" + b"b" * (HOLE - 100)  # ends in the middle of a line
    sparse(file, before, 3 * HOLE, b"cc\nlast\n")

    assert b"".join(logs.read_range(file)) == before + b"\n" + dropped(3 * HOLE) + b"cc\nlast\n"
    assert b"".join(logs.read_range(file, HOLE)) == dropped(3 * HOLE) + b"cc\nlast\n"
    assert b"".join(logs.read_range(file, 2 * HOLE, 5)) == dropped(5)
    assert b"".join(logs.read_range(file, -4)) == b"ast\n"


def test_no_extra_line_break_when_the_line_before_the_hole_is_whole(tmp_path: Path) -> None:
    file = tmp_path / "stdout"
    before = b"a" * (HOLE - 1) + b"\n"
    sparse(file, before, HOLE, b"after\n")
    assert b"".join(logs.read_range(file)) == before + dropped(HOLE) + b"after\n"
    assert logs.tail(file, 2) == dropped(HOLE) + b"after\n"


def test_reading_on_by_offset_across_the_hole_counts_every_byte_once(tmp_path: Path) -> None:
    file = tmp_path / "stdout"
    sparse(file, b"x" * HOLE, 3 * HOLE, b"end\n")
    for cut in (HOLE - 1, HOLE, HOLE + 1, 2 * HOLE, 4 * HOLE, 4 * HOLE + 2):
        text = b"".join(logs.read_range(file, 0, cut)) + b"".join(logs.read_range(file, cut))
        counts = [int(word) for word in text.split() if word.isdigit()]
        assert sum(counts) == 3 * HOLE, cut
        assert text.startswith(b"x" * HOLE) and text.endswith(b"end\n"), cut


def test_a_follower_reads_a_long_hole_as_one_piece(tmp_path: Path) -> None:
    file = tmp_path / "stdout"
    hole = 160 * logs.CHUNK
    sparse(file, b"x" * HOLE, hole, b"end\n")
    pieces, position = [], 0
    while True:
        text, count = logs.read_piece(file, position)
        if not count:
            break
        pieces.append(text)
        position += count

    assert position == file.stat().st_size
    assert pieces == [b"x" * HOLE, dropped(hole), b"end\n"]


@pytest.mark.parametrize("hole", [HOLE, 3 * logs.CHUNK, 160 * logs.CHUNK])
def test_head_and_tail_count_the_hole_as_lines(tmp_path: Path, hole: int) -> None:
    file = tmp_path / "stdout"
    before = b"a\n" * 10 + b"b" * (HOLE - 20)  # 10 whole lines, then one the hole cuts
    sparse(file, before, hole, b"c\nlast\n")
    marker = dropped(hole)

    assert logs.head(file, 10) == b"a\n" * 10
    assert logs.head(file, 11) == before  # the cut line ends where the hole begins
    assert logs.head(file, 12) == before + b"\n" + marker
    assert logs.head(file, 13) == before + b"\n" + marker + b"c\n"
    assert logs.tail(file, 1) == b"last\n"
    assert logs.tail(file, 3) == marker + b"c\nlast\n"
    assert logs.tail(file, 4) == before[20:] + b"\n" + marker + b"c\nlast\n"
    assert logs.tail(file, 99) == b"".join(logs.read_range(file))


def test_readers_stream_a_capped_file_in_chunks(tmp_path: Path) -> None:
    file = tmp_path / "stdout"
    data = numbered_lines(1, 8 * CAP)
    file.write_bytes(data)
    logcap.trim(file, CAP)
    chunks = list(logs.read_range(file))
    assert max(map(len, chunks)) <= logs.CHUNK
    text = b"".join(chunks)
    assert len(text) < CAP + 200
    assert text.count(b"bytes dropped here") == 1
    assert logs.head(file, 2) == b"line 00000001\nline 00000002\n"
    assert logs.tail(file, 1) == data.splitlines(keepends=True)[-1]

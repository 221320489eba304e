"""PgidLine: the SSH executor's pgid line taken out of a remote stderr stream."""

from __future__ import annotations

from jobnest.executors.ssh import MAX_LINE, PgidLine


def feed_all(chunks: list[bytes]) -> tuple[bytes, int | None]:
    line = PgidLine()
    kept = b"".join(line.feed(chunk) for chunk in chunks) + line.flush()
    return kept, line.pgid


def test_the_pgid_line_is_taken_out_and_the_rest_kept() -> None:
    assert feed_all([b"jobnest-pgid 42\nerror\n"]) == (b"error\n", 42)


def test_a_pgid_line_split_across_chunks_is_found() -> None:
    assert feed_all([b"jobnest-pg", b"id 4", b"2\nrest", b" more\n"]) == (b"rest more\n", 42)


def test_lines_before_the_pgid_line_are_kept() -> None:
    chunks = [b"motd from a chatty .bashrc\nwarn", b"ing\njobnest-pgid 7\nafter\n"]

    assert feed_all(chunks) == (b"motd from a chatty .bashrc\nwarning\nafter\n", 7)


def test_only_a_whole_line_counts() -> None:
    kept, pgid = feed_all([b"say jobnest-pgid 9\njobnest-pgid 9 and more\n"])

    assert pgid is None and kept == b"say jobnest-pgid 9\njobnest-pgid 9 and more\n"


def test_a_stream_that_never_shows_the_line_is_kept_whole() -> None:
    assert feed_all([b"sh: 1: cd: can't cd to /nowhere\n", b"no newline"]) == (
        b"sh: 1: cd: can't cd to /nowhere\nno newline",
        None,
    )


def test_a_long_line_is_let_through_without_being_held() -> None:
    line = PgidLine()

    kept = line.feed(b"x" * (MAX_LINE + 1))

    assert kept == b"x" * (MAX_LINE + 1)
    assert line.feed(b"\njobnest-pgid 3\n") == b"\n" and line.pgid == 3


def test_after_the_line_data_passes_as_it_comes() -> None:
    line = PgidLine()
    line.feed(b"jobnest-pgid 5\n")

    assert line.feed(b"partial") == b"partial" and line.flush() == b""

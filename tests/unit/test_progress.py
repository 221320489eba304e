"""The run's progress on the terminal: marked lines on a TTY, plain lines otherwise."""

from __future__ import annotations

import io

from jobnest.progress import Progress
from jobnest.runner import Event


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_mark_before_each_line() -> None:
    terminal = Terminal()
    Progress(terminal)(Event(7, "failed", path="load/stage", exit_code=3))

    line = terminal.getvalue()
    assert "✗ " in line  # coloured too, where the environment allows
    assert "failed" in line and "load/stage (exit 3)" in line


def test_a_pipe_gets_plain_lines() -> None:
    pipe = io.StringIO()
    Progress(pipe)(Event(7, "succeeded"))

    assert pipe.getvalue().endswith(" run 7 succeeded\n")
    assert not pipe.getvalue().startswith("✓")

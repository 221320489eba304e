"""The shell side of a cron line, turned into commands jobnest runs the same way.

- ``split_percent``: cron's ``%``. The first unescaped ``%`` ends the command and the rest is
  its stdin, where every further unescaped ``%`` is a line break and a final line break is
  added if missing; ``\\%`` is a literal ``%`` (Vixie/ISC cron, cronie).
- ``compose``: the command as jobnest runs it (``/bin/sh``, stdin ``/dev/null``) with cron's
  environment assignments exported first, under another ``SHELL`` as ``SHELL -c '...'``,
  and with stdin fed by ``printf '%s' '...' |``.
- ``split_chain``: a line's top-level ``&&`` and ``;`` chain as separate commands, only when
  that cannot change what runs: never inside quotes, parentheses or substitutions, and not
  at all when the line has ``||``, ``&``, a here-document, braces, compound commands, a
  condition (``test``, ``[``) before the end, or a step that changes the shell's state for
  the next ones (``cd``, ``export``, an assignment, ...).
- ``command_name``: a short name for a command: its program, and its subcommand if any.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

DEFAULT_SHELL = "/bin/sh"
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# fmt: off
# builtins whose effect outlives their own step: cutting after them changes the next steps
_STATEFUL = frozenset((
    "cd", "pushd", "popd", "export", "unset", "set", "source", ".", "umask", "ulimit", "alias",
    "unalias", "trap", "shopt", "eval", "exec", "read", "local", "declare", "typeset",
    "readonly", "shift", "exit", "return", "break", "continue", "wait", "hash",
))
_COMPOUND = frozenset((
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
    "select", "function", "!", "{", "}", "[[", "]]",
))
_CONDITIONS = frozenset(("test", "[", "[["))
_WRAPPERS = frozenset((
    "sudo", "nice", "ionice", "nohup", "env", "exec", "time", "chronic", "setsid", "stdbuf",
    "run-one", "command",
))
_WRAPPERS_WITH_ARG = frozenset(("timeout", "flock"))
_VALUE_OPTIONS = {  # options of wrappers that take a value: `nice -n 10 cmd`
    "nice": frozenset(("-n",)),
    "sudo": frozenset(("-u", "-g")),
    "ionice": frozenset(("-c", "-n")),
    "flock": frozenset(("-w", "-E")),
    "timeout": frozenset(("-s", "-k")),
}
_PUNCTUATION = frozenset("();<>|&")
_BOUNDARIES = frozenset("();|&")
_INTERPRETERS = frozenset((
    "sh", "bash", "dash", "zsh", "ksh", "python", "python2", "python3", "perl", "ruby", "php",
    "node", "Rscript",
))
# fmt: on
_SKIPPED_STEPS = frozenset(("cd", "sleep", "test", "[", "true", ":", "export"))
_SUBCOMMAND = re.compile(r"[A-Za-z][\w:.-]*")


# --- % and composition -------------------------------------------------------------------------


def split_percent(text: str) -> tuple[str, str | None]:
    """Cron's ``%``: (the command, its stdin or None when nothing is fed to it)."""
    command: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            command.append("%" if text[i + 1] == "%" else text[i : i + 2])
            i += 2
        elif ch == "%":
            return "".join(command), _stdin(text[i + 1 :])
        else:
            command.append(ch)
            i += 1
    return "".join(command), None


def _stdin(text: str) -> str | None:
    """What cron writes to the command's stdin for the text after the first ``%``."""
    if not text:
        return None
    out: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            if ch != "%":
                out.append("\\")
        elif ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            out.append(ch)
    if escaped:
        out.append("\\")
    data = "".join(out)
    return data if data.endswith("\n") else data + "\n"


def compose(
    command: str,
    *,
    env: Sequence[tuple[str, str]] = (),
    shell: str = DEFAULT_SHELL,
    stdin: str | None = None,
) -> str:
    """``command`` as cron would run it: ``env`` exported, under ``shell``, fed ``stdin``."""
    body = command
    if stdin is not None or not is_default_shell(shell):
        body = f"{shlex.quote(shell)} -c {shlex.quote(command)}"
    if stdin is not None:
        body = f"printf '%s' {shlex.quote(stdin)} | {body}"
    if env:
        body = "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env) + "; " + body
    return body


def is_default_shell(shell: str) -> bool:
    """Whether ``shell`` is the ``/bin/sh`` jobnest runs commands with."""
    return shell in (DEFAULT_SHELL, "sh")


# --- chains ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    """A command cut at its top-level ``&&``/``;``: ``parts`` in order, ``separators``
    between them; one part and ``refused`` saying why when it was not safe to cut."""

    parts: tuple[str, ...]
    separators: tuple[str, ...] = ()
    refused: str | None = None


class _Refused(Exception):
    """This command is not cut; the message says why."""


def split_chain(command: str) -> Chain:
    """``command`` cut into the steps of its top-level ``&&``/``;`` chain, if safe."""
    try:
        cuts = _top_level_cuts(command)
        if not cuts:
            return Chain((command.strip(),))
        parts, separators = _cut(command, cuts)
        _check_steps(parts)
    except _Refused as exc:
        return Chain((command.strip(),), refused=str(exc))
    return Chain(tuple(parts), tuple(separators))


def _cut(command: str, cuts: list[tuple[int, str]]) -> tuple[list[str], list[str]]:
    parts, start = [], 0
    for at, separator in cuts:
        parts.append(command[start:at].strip())
        start = at + len(separator)
    parts.append(command[start:].strip())
    return parts, [separator for _, separator in cuts]


def _top_level_cuts(text: str) -> list[tuple[int, str]]:
    """Where the top-level ``&&`` and ``;`` are; raises _Refused on anything not plain."""
    cuts: list[tuple[int, str]] = []
    depth, i = 0, 0
    while i < len(text):
        if text[i] in "'\"\\":
            i = _skip_quoted(text, i)
            continue
        if text[i] == "#" and (i == 0 or text[i - 1] in " \t"):
            break  # a comment runs to the end of the line
        _refuse_special(text, i)
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        separator = "&&" if text.startswith("&&", i) else ";" if text[i] == ";" else None
        if separator and depth == 0:
            cuts.append((i, separator))
        if depth == 0 and separator is None:
            _refuse_operator(text, i)
        i += len(separator) if separator else 1
    if depth:
        raise _Refused("its parentheses do not balance")
    return cuts


def _skip_quoted(text: str, i: int) -> int:
    """The index after the quoted string or escape starting at ``i``."""
    if text[i] == "\\":
        return i + 2
    end = text.find("'", i + 1) if text[i] == "'" else _double_quote_end(text, i + 1)
    if end < 0:
        raise _Refused("its quotes do not balance")
    return end + 1


def _double_quote_end(text: str, i: int) -> int:
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "`" or text.startswith("$(", i):
            raise _Refused("it substitutes a command's output")
        if text[i] == '"':
            return i
        i += 1
    return -1


def _refuse_special(text: str, i: int) -> None:
    if text[i] == "`" or text.startswith("$(", i):
        raise _Refused("it substitutes a command's output")
    if text.startswith("<<", i):
        raise _Refused("it has a here-document")
    if text.startswith(";;", i):
        raise _Refused("it has a case statement")


def _refuse_operator(text: str, i: int) -> None:
    """Refuse a top-level ``||`` or a background ``&`` (``>&``, ``&>`` and ``|&`` are fine)."""
    if text.startswith("||", i):
        raise _Refused("it has '||', whose fallback cannot be a dependency")
    after_redirect = i > 0 and text[i - 1] in "<>|&"
    is_background = text[i] == "&" and not after_redirect and not text.startswith("&>", i)
    if is_background and not text.startswith("&&", i):
        raise _Refused("it runs something in the background with '&'")


def _check_steps(parts: Sequence[str]) -> None:
    for index, part in enumerate(parts):
        words = _words(part)
        if not words or words[0].startswith("#"):
            raise _Refused("it has an empty step")
        program = _strip_assignments(words)
        if not program:
            raise _Refused(f"{part!r} sets a shell variable for the steps after it")
        first = program[0]
        if first in _STATEFUL:
            raise _Refused(f"{first!r} changes the shell for the steps after it")
        if first in _COMPOUND or "{" in first or "}" in first:
            raise _Refused(f"{part!r} is part of a compound command")
        if first in _CONDITIONS and index < len(parts) - 1:
            raise _Refused(f"{part!r} is a condition, not a step")


# --- names -------------------------------------------------------------------------------------


def command_name(command: str) -> str:
    """A short name for ``command``: its program's base name, and its subcommand if any.

    ``cd``, ``sleep`` and tests are looked through, as are wrappers (``nice -n 10``,
    ``timeout 60``, ...) and interpreters (``python3 -m tool`` is ``tool``, ``bash -c '...'``
    is named from its command). A line of nothing but ``cd``/``sleep``/... is named after that.
    """
    steps = [words for words in map(_strip_assignments, _steps(command)) if words]
    for words in steps:
        if words[0] not in _SKIPPED_STEPS:
            return _program_name(words)
    return _base(steps[0][0]) if steps else ""


def _steps(command: str) -> list[list[str]]:
    """The words of each simple command in ``command``, split at ``; | & ( )``."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: good enough for a name
        return [step.split() for step in re.split(r"[;|&()]+", command)]
    steps: list[list[str]] = [[]]
    for token in tokens:
        if token and set(token) <= _PUNCTUATION and (set(token) & _BOUNDARIES):
            steps.append([])
        else:
            steps[-1].append(token)
    return steps


def _program_name(words: list[str]) -> str:
    words = _past_wrappers(words)
    if not words:
        return ""
    program = _base(words[0])
    if program in _INTERPRETERS:
        return _script_name(program, words[1:])
    return _with_subcommand(program, words[1:])


def _past_wrappers(words: list[str]) -> list[str]:
    """``words`` from the first program that is not a wrapper, with the wrappers' options."""
    while words and _base(words[0]) in _WRAPPERS | _WRAPPERS_WITH_ARG:
        program, rest = (
            _base(words[0]),
            _past_options(words[1:], _VALUE_OPTIONS.get(_base(words[0]), frozenset())),
        )
        if program == "env":
            rest = _strip_assignments(rest)
        words = rest[1:] if program in _WRAPPERS_WITH_ARG else rest
    return words


def _script_name(interpreter: str, args: list[str]) -> str:
    args = _past_options(args, frozenset(), keep=("-m", "-c"))
    if len(args) >= 2 and args[0] == "-c":
        return command_name(args[1]) or interpreter
    if len(args) >= 2 and args[0] == "-m":
        return _with_subcommand(args[1], args[2:])
    return _with_subcommand(_base(args[0]), args[1:]) if args else interpreter


def _past_options(
    words: list[str], with_value: frozenset[str], keep: tuple[str, ...] = ()
) -> list[str]:
    while words and words[0].startswith("-") and words[0] not in keep:
        words = words[2:] if words[0] in with_value else words[1:]
    return words


def _with_subcommand(program: str, rest: list[str]) -> str:
    return f"{program}-{rest[0]}" if rest and _SUBCOMMAND.fullmatch(rest[0]) else program


def _base(word: str) -> str:
    return PurePosixPath(word).name or word


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:
        return text.split()


def _strip_assignments(words: list[str]) -> list[str]:
    index = 0
    while index < len(words) and _ASSIGNMENT.match(words[index]):
        index += 1
    return words[index:]

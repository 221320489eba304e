"""Crontab lines → jobs: ``convert_crontab(text)``, pure.

Lines are read as Vixie/ISC cron and cronie read them:

- Blank lines and ``#`` comment lines. A comment ``# jobnest: NAME`` on the line right above
  a job line names that job (with ``group``, its task); other comment lines right above it
  become the job's notes. Anything else in between (a blank line, an assignment) breaks
  the link.
- ``NAME = value`` assignments (value optionally quoted) apply to the job lines below them.
  ``MAILTO`` becomes the job's ``notify.email`` (on failure), ``CRON_TZ`` its time zone;
  every other variable, ``SHELL`` and ``PATH`` included, is exported in front of the
  command (``export PATH=...; cmd``); a ``SHELL`` other than ``/bin/sh`` also runs the
  command as ``SHELL -c '...'``. ``MAILFROM`` belongs in the ``[smtp]`` section: noted.
- Job lines: five time fields or an ``@daily``-style alias, the user with ``system``
  (``/etc/crontab``, ``/etc/cron.d``), then the command, whose ``%`` keeps cron's meaning
  (see ``shell.split_percent``). ``@reboot`` has no jobnest equivalent: noted and skipped.

One job per line by default, named from its command (``shell.command_name``). With
``group``, one job per distinct schedule (and time zone and MAILTO) with a task per line,
and a line's top-level ``&&``/``;`` chain split into tasks that run one ``after`` the other
when ``shell.split_chain`` finds that safe. Names are made valid and unique with suffixes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobnest.errors import InvalidInput, InvalidSchedule
from jobnest.importers.base import Imported, UniqueNames, clean_name
from jobnest.importers.shell import (
    DEFAULT_SHELL,
    Chain,
    command_name,
    compose,
    split_chain,
    split_percent,
)
from jobnest.model import schedule as cron
from jobnest.model.job import Job, parse_job

_ASSIGNMENT = re.compile(r"\s*([^\s=#]+)\s*=\s*(.*?)\s*$")
_NAME_COMMENT = re.compile(r"#\s*jobnest:\s*(.*?)\s*$")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SLEEP = re.compile(r"\s*sleep\s+\d")
HOME_NOTE = (
    "cron ran commands in the crontab owner's home directory; jobnest runs them in the job's "
    "workdir (default: where `jobnest serve` or `run` starts): set workdir if they rely on it"
)
MAILTO_NOTE = (
    "MAILTO: cron mailed whatever a job printed; jobnest mails these addresses when a run "
    "fails (add 'success' to notify.on for every run), through the [smtp] settings"
)


@dataclass(frozen=True)
class CronLine:
    """One job line of a crontab, with everything in effect where it stands."""

    number: int
    text: str
    schedule: str
    command: str  # % resolved: what the shell runs
    stdin: str | None
    user: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    shell: str = DEFAULT_SHELL
    timezone: str | None = None
    mailto: tuple[str, ...] = ()
    name: str | None = None  # from a "# jobnest: NAME" comment
    comments: tuple[str, ...] = ()


def convert_crontab(
    text: str,
    *,
    source: str = "crontab",
    system: bool = False,
    group: bool = False,
    timezone: str | None = None,
) -> Imported:
    """The jobs of a crontab, and notes on what did not carry over as it was.

    Args:
        source: how notes and errors name the crontab (a file name, or "stdin").
        system: lines carry a user field after the schedule (/etc/crontab).
        group: one job per schedule with a task per line, chains split into tasks.
        timezone: for lines without CRON_TZ (default: the daemon's zone, as cron's).

    Raises:
        InvalidInput: a line that is not crontab syntax, a schedule or time zone that does
            not parse; the message names the source, the line number and the value.
    """
    if timezone is not None:
        cron.zone(timezone)
    reader = _Reader(source, system)
    for number, line in enumerate(text.splitlines(), 1):
        reader.read(number, line.rstrip("\r"))
    convert = _grouped if group else _one_per_line
    jobs = list(convert(reader.lines, timezone, reader.notes, source))
    if reader.lines:
        reader.notes.append(f"{source}: {HOME_NOTE}")
    if any(line.mailto for line in reader.lines):
        reader.notes.append(f"{source}: {MAILTO_NOTE}")
    return Imported(tuple(jobs), tuple(reader.notes))


# --- reading lines -----------------------------------------------------------------------------


@dataclass
class _Reader:
    """Reads a crontab line by line, keeping what the next job line inherits."""

    source: str
    system: bool
    env: dict[str, str] = field(default_factory=dict)
    shell: str = DEFAULT_SHELL
    timezone: str | None = None
    mailto: tuple[str, ...] = ()
    comments: list[str] = field(default_factory=list)
    name: str | None = None
    lines: list[CronLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def read(self, number: int, text: str) -> None:
        stripped = text.strip()
        if stripped.startswith("#"):
            self._comment(stripped)
            return
        if stripped:
            assignment = _ASSIGNMENT.fullmatch(text)
            if assignment:
                self._assign(number, assignment[1], _unquote(assignment[2]))
            else:
                self._job(number, text)
        self.comments, self.name = [], None

    def note(self, number: int, message: str) -> None:
        self.notes.append(f"{self.source}:{number}: {message}")

    def fail(self, number: int, message: str) -> InvalidInput:
        return InvalidInput(f"{self.source}:{number}: {message}")

    def _comment(self, text: str) -> None:
        named = _NAME_COMMENT.fullmatch(text)
        if named:
            self.name = named[1]
        else:
            self.comments.append(text.lstrip("#").strip())

    def _assign(self, number: int, name: str, value: str) -> None:
        if name == "MAILTO":
            self.mailto = self._addresses(number, value)
        elif name == "CRON_TZ":
            self.timezone = self._zone(number, value)
        elif name == "MAILFROM":
            self.note(number, f"MAILFROM={value!r}: the sender is 'from' in the [smtp] settings")
        elif not _IDENTIFIER.fullmatch(name):
            self.note(number, f"{name!r} is not a shell variable name: not exported")
        else:
            self.env.pop(name, None)  # a new value goes last, after what it may refer to
            self.env[name] = value
            if name == "SHELL":
                self.shell = value

    def _addresses(self, number: int, value: str) -> tuple[str, ...]:
        words = [word for word in re.split(r"[,\s]+", value) if word]
        for word in words:
            if "@" not in word:
                self.note(number, f"MAILTO {word!r} is a local user, not an address: left out")
        return tuple(word for word in words if "@" in word)

    def _zone(self, number: int, value: str) -> str | None:
        if not value:
            return None
        try:
            cron.zone(value)
        except InvalidSchedule:
            raise self.fail(number, f"CRON_TZ={value!r} is not an IANA time zone") from None
        return value

    def _job(self, number: int, text: str) -> None:
        if text.split()[0].lower() == "@reboot":
            self.note(
                number,
                "@reboot has no jobnest equivalent (jobs run on a schedule or on demand): skipped",
            )
            return
        when, rest = self._schedule(number, text)
        user = None
        if self.system:
            user, rest = self._user(number, rest)
        command, stdin = split_percent(rest)
        if not command.strip():
            raise self.fail(number, f"no command in {text.strip()!r}")
        self.lines.append(self._line(number, text, when, command, stdin, user))

    def _schedule(self, number: int, text: str) -> tuple[str, str]:
        words = text.split(None, 1)
        if words[0].startswith("@"):
            when, rest = words[0], words[1] if len(words) > 1 else ""
        else:
            fields = text.split(None, 5)
            if len(fields) < 6:
                raise self.fail(
                    number, f"expected five time fields and a command, got {text.strip()!r}"
                )
            when, rest = " ".join(fields[:5]), fields[5]
        try:
            cron.check(when)
        except InvalidSchedule as exc:
            raise self.fail(number, str(exc)) from None
        return when, rest

    def _user(self, number: int, rest: str) -> tuple[str, str]:
        words = rest.split(None, 1)
        if len(words) < 2:
            raise self.fail(
                number, f"expected a user and a command after the schedule, got {rest!r}"
            )
        self.note(
            number, f"cron ran this as user {words[0]!r}; jobnest runs it as the daemon's user"
        )
        return words[0], words[1]

    def _line(
        self, number: int, text: str, when: str, command: str, stdin: str | None, user: str | None
    ) -> CronLine:
        return CronLine(
            number, text.strip(), when, command, stdin, user, tuple(self.env.items()), self.shell,
            self.timezone, self.mailto, self.name, tuple(self.comments),
        )  # fmt: skip


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


# --- lines to jobs -----------------------------------------------------------------------------


def _one_per_line(
    lines: Sequence[CronLine], timezone: str | None, notes: list[str], source: str
) -> Iterator[Job]:
    names = UniqueNames()
    for line in lines:
        name = names.claim(_line_name(line, notes, source))
        _note_sleep(line, notes, source)
        task = {"name": name, "command": _command(line, line.command, line.stdin)}
        yield _job(name, [line], timezone, [task], source)


def _grouped(
    lines: Sequence[CronLine], timezone: str | None, notes: list[str], source: str
) -> Iterator[Job]:
    groups: dict[tuple[Any, ...], list[CronLine]] = {}
    for line in lines:
        key = (cron.expand_alias(line.schedule), line.timezone or timezone, line.mailto)
        groups.setdefault(key, []).append(line)
    names = UniqueNames()
    for members in groups.values():
        name = names.claim(_group_name(members[0].schedule))
        tasks = _group_tasks(members, notes, source)
        yield _job(name, members, timezone, tasks, source)


def _group_tasks(
    members: Sequence[CronLine], notes: list[str], source: str
) -> list[dict[str, Any]]:
    names = UniqueNames()
    tasks: list[dict[str, Any]] = []
    for line in members:
        chain = _chain(line, notes, source)
        parts = [names.claim(n) for n in _part_names(line, chain, notes, source)]
        for index, (name, part) in enumerate(zip(parts, chain.parts, strict=True)):
            stdin = line.stdin if len(chain.parts) == 1 else None
            task: dict[str, Any] = {"name": name, "command": _command(line, part, stdin)}
            if index:
                task["after"] = [parts[index - 1]]
            tasks.append(task)
        _note_chain(line, chain, parts, notes, source)
    return tasks


def _chain(line: CronLine, notes: list[str], source: str) -> Chain:
    _note_sleep(line, notes, source)
    if line.stdin is not None:
        return Chain((line.command,), refused="its stdin (after '%') is read by the whole line")
    return split_chain(line.command)


def _note_chain(
    line: CronLine, chain: Chain, names: list[str], notes: list[str], source: str
) -> None:
    where = f"{source}:{line.number}"
    if len(chain.parts) > 1:
        message = f"{where}: split into tasks {' → '.join(map(repr, names))}"
        if ";" in chain.separators:
            message += "; after ';' the next step ran even if one failed, now it waits for success"
        notes.append(message)
    elif chain.refused and ("&&" in line.command or ";" in line.command):
        notes.append(f"{where}: kept as one task: {chain.refused}")


def _note_sleep(line: CronLine, notes: list[str], source: str) -> None:
    if _SLEEP.match(line.command):
        notes.append(
            f"{source}:{line.number}: starts with 'sleep', an ordering hack? "
            "In jobnest, say what runs first with 'after' in one job"
        )


def _command(line: CronLine, part: str, stdin: str | None = None) -> str:
    return compose(part, env=line.env, shell=line.shell, stdin=stdin)


def _line_name(line: CronLine, notes: list[str], source: str) -> str:
    if line.name is None:
        return clean_name(command_name(line.command), f"line-{line.number}")
    name = clean_name(line.name, f"line-{line.number}")
    if name != line.name:
        notes.append(f"{source}:{line.number}: name {line.name!r} is not valid: {name!r} instead")
    return name


def _part_names(line: CronLine, chain: Chain, notes: list[str], source: str) -> list[str]:
    if len(chain.parts) == 1:
        return [_line_name(line, notes, source)]
    if line.name is not None:
        base = _line_name(line, notes, source)
        return [f"{base}-{index}" for index in range(1, len(chain.parts) + 1)]
    return [
        clean_name(command_name(part), f"line-{line.number}-{index}")
        for index, part in enumerate(chain.parts, 1)
    ]


def _group_name(when: str) -> str:
    if when.startswith("@"):
        return f"cron-{when[1:].lower()}"
    return "cron-" + "_".join(when.split()).replace("/", "-every-")


def _job(
    name: str,
    lines: Sequence[CronLine],
    timezone: str | None,
    tasks: list[dict[str, Any]],
    source: str,
) -> Job:
    first = lines[0]
    definition: dict[str, Any] = {"name": name, "schedule": first.schedule}
    if first.timezone or timezone:
        definition["timezone"] = first.timezone or timezone
    definition["notes"] = _notes(lines, source)
    if first.mailto:
        definition["notify"] = {"email": list(first.mailto), "on": ["failure"]}
    definition["tasks"] = tasks
    try:
        return parse_job(definition)
    except InvalidInput as exc:
        raise InvalidInput(f"{source}:{first.number}: {exc}") from None


def _notes(lines: Sequence[CronLine], source: str) -> str:
    out: list[str] = []
    for line in lines:
        out += line.comments
        ran_as = f" (as {line.user})" if line.user else ""
        out.append(f"{source} line {line.number}{ran_as}: {line.text}")
    return "\n".join(out)

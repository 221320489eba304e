"""The shell side of cron lines: %, composition, chain splitting and names from commands."""

from __future__ import annotations

import pytest

from jobnest.importers.shell import command_name, compose, split_chain, split_percent

# --- % ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "command", "stdin"),
    [
        ("mail -s hi ops%line one%line two", "mail -s hi ops", "line one\nline two\n"),
        ("echo 50\\% done", "echo 50% done", None),
        ("date +\\%Y-\\%m-\\%d", "date +%Y-%m-%d", None),
        ("cat%", "cat", None),
        ("cat%ends with a break%", "cat", "ends with a break\n"),
        ("cat%a\\%b", "cat", "a%b\n"),
        ("printf x\\\\%in", "printf x\\\\", "in\n"),
        ("cat%back\\slash", "cat", "back\\slash\n"),
    ],
)
def test_percent_follows_cron(text: str, command: str, stdin: str | None) -> None:
    assert split_percent(text) == (command, stdin)


# --- compose ------------------------------------------------------------------------------------


def test_a_plain_command_is_kept_as_it_is() -> None:
    assert compose("backup.sh --full") == "backup.sh --full"


def test_the_environment_is_exported_for_every_step() -> None:
    command = compose("a && b; c", env=[("PATH", "/opt/bin:/usr/bin"), ("NOTE", "it's")])
    assert command == "export PATH=/opt/bin:/usr/bin NOTE='it'\"'\"'s'; a && b; c"


def test_another_shell_runs_the_command() -> None:
    assert compose("echo {a,b}", shell="/bin/bash") == "/bin/bash -c 'echo {a,b}'"


def test_stdin_is_fed_by_printf() -> None:
    assert compose("mail -s hi ops", stdin="a\nb\n") == (
        "printf '%s' 'a\nb\n' | /bin/sh -c 'mail -s hi ops'"
    )


# --- chains -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "parts", "separators"),
    [
        ("./extract.sh && ./load.sh", ("./extract.sh", "./load.sh"), ("&&",)),
        ("a && b; c", ("a", "b", "c"), ("&&", ";")),
        ("a 2>&1 && b &> log", ("a 2>&1", "b &> log"), ("&&",)),
        ("a | gzip > out && b", ("a | gzip > out", "b"), ("&&",)),
        ("(a; b) && c", ("(a; b)", "c"), ("&&",)),
        ("echo 'x && y' \"u; v\" && b", ("echo 'x && y' \"u; v\"", "b"), ("&&",)),
        ("a && b # the rest; is a comment", ("a", "b # the rest; is a comment"), ("&&",)),
        ("FOO=1 a && b", ("FOO=1 a", "b"), ("&&",)),
        ("a && [ -f done ]", ("a", "[ -f done ]"), ("&&",)),
    ],
)
def test_chains_are_cut_at_top_level(
    command: str, parts: tuple[str, ...], separators: tuple[str, ...]
) -> None:
    chain = split_chain(command)
    assert (chain.parts, chain.separators, chain.refused) == (parts, separators, None)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("a || b", "'||'"),
        ("a && b || c", "'||'"),
        ("a && b &", "background"),
        ("cd /srv && ./run.sh", "'cd' changes the shell"),
        ("export X=1; run", "'export' changes the shell"),
        ("X=1; run", "sets a shell variable"),
        ("[ -f lock ] && run", "condition"),
        ("test -x /bin/x && run", "condition"),
        ("echo $(date); run", "substitutes"),
        ("echo `date`; run", "substitutes"),
        ('echo "$(date)"; run', "substitutes"),
        ("if a; then b; fi", "compound"),
        ("for f in *; do x; done", "compound"),
        ("{ a; b; } && c", "compound"),
        ("cat <<EOF; x", "here-document"),
        ("a; b;", "empty step"),
        ("a 'unclosed; b", "quotes"),
        ("(a; b", "parentheses"),
    ],
)
def test_chains_are_not_cut_when_that_could_change_what_runs(command: str, reason: str) -> None:
    chain = split_chain(command)
    assert chain.parts == (command,)
    assert chain.refused is not None and reason in chain.refused


def test_a_single_command_is_one_part() -> None:
    assert split_chain("  backup.sh  ").parts == ("backup.sh",)


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("/usr/local/bin/backup.sh --full > /var/log/b.log 2>&1", "backup.sh"),
        ("cd /srv/app && ./manage.py clearsessions", "manage.py-clearsessions"),
        ("php /var/www/artisan schedule:run", "artisan-schedule:run"),
        ("python3 -u -m reports.weekly", "reports.weekly"),
        ("nice -n 10 timeout 60 /opt/sync.sh", "sync.sh"),
        ("sudo -u www-data php cron.php", "cron.php"),
        ("env LANG=C /usr/bin/rsync -a src dst", "rsync"),
        ("sleep 600 && rsync -a a b", "rsync"),
        ("bash -c 'cd /x && ./run.sh'", "run.sh"),
        (
            "test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )",
            "run-parts",
        ),
        ("sleep 30", "sleep"),
        ("x 2>&1 | y", "x"),
    ],
)
def test_names_come_from_the_program_that_does_the_work(command: str, name: str) -> None:
    assert command_name(command) == name

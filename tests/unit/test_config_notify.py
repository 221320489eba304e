"""The config file's ``[smtp]`` section and ``base_url``: defaults and refusals."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from jobnest.config import Settings, SMTPSettings, load_settings
from jobnest.errors import InvalidInput


def settings_of(tmp_path: Path, toml: str, **env: str) -> Settings:
    (tmp_path / "config.toml").write_text(toml, encoding="utf-8")
    return load_settings({"JOBNEST_HOME": str(tmp_path), **env})


def test_without_an_smtp_section_there_is_no_email_and_no_links(tmp_path: Path) -> None:
    settings = load_settings({"JOBNEST_HOME": str(tmp_path)})

    assert settings.smtp is None
    assert settings.base_url is None


def test_the_smtp_section_is_read_with_its_defaults(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, '[smtp]\nhost = "mail.example.com"\n')

    assert settings.smtp == SMTPSettings(
        host="mail.example.com", port=25, sender=f"jobnest@{socket.gethostname()}"
    )


@pytest.mark.parametrize(("flags", "port"), [("starttls = true", 587), ("tls = true", 465)])
def test_the_default_port_follows_the_kind_of_tls(tmp_path: Path, flags: str, port: int) -> None:
    settings = settings_of(tmp_path, f'[smtp]\nhost = "m"\n{flags}\n')

    assert settings.smtp is not None and settings.smtp.port == port


def test_every_smtp_key_is_read_and_the_password_may_come_from_the_environment(
    tmp_path: Path,
) -> None:
    toml = (
        'base_url = "https://jobs.example.com/"\n'
        '[smtp]\nhost = "mail.example.com"\nport = 2525\nstarttls = true\n'
        'username = "jobnest"\npassword = "from-file"\nfrom = "Jobnest <jobs@example.com>"\n'
        "timeout = 5\n"
    )
    settings = settings_of(tmp_path, toml, JOBNEST_SMTP_PASSWORD="from-env")

    assert settings.smtp == SMTPSettings(
        host="mail.example.com",
        port=2525,
        sender="Jobnest <jobs@example.com>",
        starttls=True,
        username="jobnest",
        password="from-env",
        timeout=5.0,
    )
    assert settings.base_url == "https://jobs.example.com"
    assert "from-env" not in repr(settings)


@pytest.mark.parametrize(
    ("toml", "part"),
    [
        ('smtp = "mail"', "[smtp] must be a section"),
        ("[smtp]\nport = 25", "[smtp] needs host"),
        ('[smtp]\nhost = "m"\nserver = "x"', "unknown key 'server'"),
        ('[smtp]\nhost = "m"\ntls = true\nstarttls = true', "exclude each other"),
        ('[smtp]\nhost = "m"\ntls = "yes"', "tls must be true or false, got 'yes'"),
        ('[smtp]\nhost = "m"\nport = 0', "port must be a whole number 1–65535, got 0"),
        ('[smtp]\nhost = "m"\nusername = "u"', "username and password go together"),
        ('[smtp]\nhost = "m"\nfrom = "a@b\\r\\nBcc: c@d"', "line break"),
        ('[smtp]\nhost = ""', "host must be non-empty text"),
        ('[smtp]\nhost = "m"\ntimeout = -1', "timeout must be a number of seconds"),
        ('base_url = "jobs.example.com"', "base_url must be an http:// or https:// URL"),
        ('base_url = "https://a.example/x y"', "space or control character"),
    ],
)
def test_bad_notification_settings_are_refused_naming_the_value(
    tmp_path: Path, toml: str, part: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        settings_of(tmp_path, toml + "\n")

    assert part in str(caught.value)

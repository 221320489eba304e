"""``jobnest passwd`` and ``token``: the web password and the API tokens of scripts."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from jobnest import credentials
from jobnest.cli.edge import Context, pass_context
from jobnest.errors import InvalidInput
from jobnest.runner import utc_now
from jobnest.store.base import TokenRecord


@click.command()
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin's first line.")
@click.option(
    "--print-hash",
    is_flag=True,
    help="Print the hash, for password_hash in config.toml, instead of storing it.",
)
@pass_context
def passwd(ctx: Context, password_stdin: bool, print_hash: bool) -> None:
    """Set the password of the web UI and API; every session is logged out."""
    if ctx.settings.password_hash is not None and not print_hash:
        raise InvalidInput(
            "the password is set by password_hash in the config file or $JOBNEST_PASSWORD_HASH:"
            " change it there (`jobnest passwd --print-hash` makes one)"
        )
    password = _new_password(password_stdin)
    credentials.check_new_password(password)
    hashed = credentials.hash_password(password)
    if print_hash:
        click.echo(hashed)
        return
    ctx.store.set_password_hash(hashed)
    click.echo("password set; every session was logged out")


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    first = click.prompt("New password", hide_input=True)
    if click.prompt("Repeat it", hide_input=True) != first:
        raise InvalidInput("the two passwords differ: nothing was changed")
    return str(first)


@click.group()
def token() -> None:
    """API tokens for scripts: send one as `Authorization: Bearer <token>`."""


@token.command(name="create")
@click.argument("name")
@click.option(
    "--scope",
    default="read",
    show_default=True,
    metavar="read|full",
    help="read: GET and HEAD only; full: everything.",
)
@pass_context
def token_create(ctx: Context, name: str, scope: str) -> None:
    """Create an API token called NAME and print it: it is shown this once only."""
    secret, record = credentials.issue_token(ctx.store, name, scope, now=utc_now())
    click.echo(secret)
    click.echo(
        f"token {record.id} {name!r} (scope {scope}): keep it now, it is not shown again", err=True
    )


@token.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def token_list(ctx: Context, as_json: bool) -> None:
    """Every API token, revoked ones too (never the tokens themselves)."""
    records = ctx.store.list_tokens()
    if as_json:
        click.echo(json.dumps([_token_json(t) for t in records], ensure_ascii=False))
        return
    for t in records:
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M:%S}Z" if t.revoked_at else "active"
        created = f"{t.created_at:%Y-%m-%d %H:%M:%S}Z"
        click.echo(f"{t.id:>5}  {t.scope:<4}  created {created}  {state:<28} {t.name}")


@token.command(name="revoke")
@click.argument("token_id", metavar="ID")
@pass_context
def token_revoke(ctx: Context, token_id: str) -> None:
    """Revoke the API token ID (see `jobnest token list`): it stops working at once."""
    if not token_id.isdecimal():
        raise InvalidInput(
            f"a token id is a whole number (see `jobnest token list`), got {token_id!r}"
        )
    record = ctx.store.revoke_token(int(token_id), now=utc_now())
    click.echo(f"token {record.id} {record.name!r} revoked")


def _token_json(t: TokenRecord) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "scope": t.scope,
        "created_at": t.created_at.isoformat(),
        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
    }

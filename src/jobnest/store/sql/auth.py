"""Authentication: the password hash, login sessions and API tokens (hashes only)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from jobnest.errors import NotFound
from jobnest.store.base import SessionRecord, TokenRecord
from jobnest.store.schema import api_tokens, auth_sessions, auth_settings
from jobnest.store.sql.engine import SQLBase
from jobnest.store.sql.rows import dialect_insert, record_columns

_SESSION_COLUMNS = record_columns(auth_sessions, SessionRecord)
_TOKEN_COLUMNS = record_columns(api_tokens, TokenRecord)
_PASSWORD_KEY = "password_hash"  # noqa: S105 - the name of a setting


class AuthMixin(SQLBase):
    """The password, sessions and tokens."""

    def get_password_hash(self) -> str | None:
        query = sa.select(auth_settings.c.value).where(auth_settings.c.key == _PASSWORD_KEY)
        with self._read() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else str(value)

    def set_password_hash(self, value: str) -> None:
        with self._write() as conn:
            insert = dialect_insert(conn, auth_settings).values(key=_PASSWORD_KEY, value=value)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[auth_settings.c.key], set_={"value": insert.excluded.value}
                )
            )
            conn.execute(sa.delete(auth_sessions))

    def create_session(
        self, id_hash: str, csrf: str, *, now: datetime, expires_at: datetime
    ) -> SessionRecord:
        values = {"id_hash": id_hash, "csrf": csrf, "created_at": now, "expires_at": expires_at}
        with self._write() as conn:
            conn.execute(sa.insert(auth_sessions).values(values))
        return SessionRecord(id_hash, csrf, now.astimezone(UTC), expires_at.astimezone(UTC))

    def find_session(self, id_hash: str, *, now: datetime) -> SessionRecord | None:
        query = sa.select(*_SESSION_COLUMNS).where(
            auth_sessions.c.id_hash == id_hash, auth_sessions.c.expires_at > now
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else SessionRecord(*row)

    def delete_session(self, id_hash: str) -> None:
        with self._write() as conn:
            conn.execute(sa.delete(auth_sessions).where(auth_sessions.c.id_hash == id_hash))

    def purge_sessions(self, *, now: datetime) -> int:
        with self._write() as conn:
            done = conn.execute(sa.delete(auth_sessions).where(auth_sessions.c.expires_at <= now))
        return int(done.rowcount)

    def create_token(self, name: str, token_hash: str, scope: str, *, now: datetime) -> TokenRecord:
        values = {"name": name, "hash": token_hash, "scope": scope, "created_at": now}
        with self._write() as conn:
            insert = sa.insert(api_tokens).values(values).returning(api_tokens.c.id)
            token_id = conn.execute(insert).scalar_one()
        return TokenRecord(token_id, name, scope, now.astimezone(UTC))

    def find_token(self, token_hash: str) -> TokenRecord | None:
        query = sa.select(*_TOKEN_COLUMNS).where(
            api_tokens.c.hash == token_hash, api_tokens.c.revoked_at.is_(None)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else TokenRecord(*row)

    def revoke_token(self, token_id: int, *, now: datetime) -> TokenRecord:
        with self._write() as conn:
            conn.execute(
                sa.update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            query = sa.select(*_TOKEN_COLUMNS).where(api_tokens.c.id == token_id)
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no API token with id {token_id}")
        return TokenRecord(*row)

    def list_tokens(self) -> list[TokenRecord]:
        query = sa.select(*_TOKEN_COLUMNS).order_by(api_tokens.c.id)
        with self._read() as conn:
            return [TokenRecord(*row) for row in conn.execute(query)]

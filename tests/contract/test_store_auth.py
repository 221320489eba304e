"""The authentication part of the store contract: password hash, sessions, API tokens.

The store keeps digests only; what it is handed here are stand-ins for sha256 digests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobnest.errors import NotFound
from jobnest.store.base import SessionRecord, Store, TokenRecord

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def open_session(store: Store, id_hash: str = "s1", *, lifetime: timedelta = HOUR) -> None:
    store.create_session(id_hash, f"csrf-{id_hash}", now=T0, expires_at=T0 + lifetime)


def test_a_fresh_store_has_no_password_hash(store: Store) -> None:
    assert store.get_password_hash() is None


def test_password_hash_is_stored_and_replaced(store: Store) -> None:
    store.set_password_hash("scrypt$first")
    store.set_password_hash("scrypt$second")
    assert store.get_password_hash() == "scrypt$second"


def test_setting_the_password_ends_every_session(store: Store) -> None:
    open_session(store, "s1")
    open_session(store, "s2")
    store.set_password_hash("scrypt$new")
    assert store.find_session("s1", now=T0) is None
    assert store.find_session("s2", now=T0) is None


def test_a_session_is_found_by_its_digest_until_it_expires(store: Store) -> None:
    open_session(store, "s1")
    found = store.find_session("s1", now=T0 + HOUR - timedelta(microseconds=1))
    assert found == SessionRecord("s1", "csrf-s1", T0, T0 + HOUR)
    assert store.find_session("s1", now=T0 + HOUR) is None
    assert store.find_session("other", now=T0) is None


def test_session_instants_come_back_in_utc(store: Store) -> None:
    berlin = T0.astimezone(ZoneInfo("Europe/Berlin"))
    created = store.create_session("s1", "c", now=berlin, expires_at=berlin + HOUR)
    found = store.find_session("s1", now=T0)
    assert found is not None
    assert found == created
    assert found.created_at.tzinfo == UTC
    assert found.expires_at == T0 + HOUR


def test_naive_instants_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.create_session("s1", "c", now=T0, expires_at=datetime(2024, 5, 2))


def test_deleting_a_session_logs_it_out_and_only_it(store: Store) -> None:
    open_session(store, "s1")
    open_session(store, "s2")
    store.delete_session("s1")
    store.delete_session("s1")  # a second logout is harmless
    assert store.find_session("s1", now=T0) is None
    assert store.find_session("s2", now=T0) is not None


def test_purge_deletes_only_expired_sessions(store: Store) -> None:
    open_session(store, "short", lifetime=HOUR)
    open_session(store, "long", lifetime=3 * HOUR)
    assert store.purge_sessions(now=T0 + 2 * HOUR) == 1
    assert store.find_session("long", now=T0 + 2 * HOUR) is not None
    assert store.purge_sessions(now=T0 + 2 * HOUR) == 0


def test_a_token_is_found_by_its_digest(store: Store) -> None:
    created = store.create_token("ci", "t1", "read", now=T0)
    assert created == TokenRecord(created.id, "ci", "read", T0)
    assert store.find_token("t1") == created
    assert store.find_token("t2") is None


def test_token_ids_are_distinct_and_names_may_repeat(store: Store) -> None:
    first = store.create_token("ci", "t1", "read", now=T0)
    second = store.create_token("ci", "t2", "full", now=T0 + HOUR)
    assert first.id != second.id
    assert [t.id for t in store.list_tokens()] == [first.id, second.id]


def test_a_revoked_token_is_not_found_any_more(store: Store) -> None:
    token = store.create_token("ci", "t1", "full", now=T0)
    revoked = store.revoke_token(token.id, now=T0 + HOUR)
    assert revoked.revoked_at == T0 + HOUR
    assert store.find_token("t1") is None


def test_revoking_twice_keeps_the_first_instant(store: Store) -> None:
    token = store.create_token("ci", "t1", "full", now=T0)
    store.revoke_token(token.id, now=T0 + HOUR)
    assert store.revoke_token(token.id, now=T0 + 2 * HOUR).revoked_at == T0 + HOUR


def test_revoking_an_unknown_token_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="42"):
        store.revoke_token(42, now=T0)


def test_list_tokens_includes_revoked_ones(store: Store) -> None:
    kept = store.create_token("deploy", "t1", "full", now=T0)
    gone = store.revoke_token(store.create_token("old", "t2", "read", now=T0).id, now=T0 + HOUR)
    assert store.list_tokens() == [kept, gone]

"""Credentials: the web password, login sessions and API tokens, and how each is checked.

The database never holds a secret. The password is kept as a salted scrypt hash that
carries its own parameters (``scrypt$16384$8$1$<salt>$<key>``, base64), so they can be
raised later without breaking stored hashes. A session id or an API token is
``secrets.token_urlsafe(32)`` and is kept as its sha256. Every comparison of secrets is
constant-time.

The password in force is the config file's ``password_hash`` (or ``$JOBNEST_PASSWORD_HASH``)
when there is one, else the one ``jobnest passwd`` stored in the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobnest.config import Settings
from jobnest.errors import InvalidInput
from jobnest.store.base import SessionRecord, Store, TokenRecord

SCOPES = ("read", "full")
SESSION_LIFETIME = timedelta(days=7)
MIN_PASSWORD_LENGTH = 8
MAX_NAME_LENGTH = 128

_SCHEME = "scrypt"
_COST, _BLOCK_SIZE, _PARALLELISM = 2**14, 8, 1  # Django's scrypt defaults: ~50 ms, 16 MiB
_MAX_COST = 2**20
_SALT_BYTES = 16
_KEY_BYTES = 32


@dataclass(frozen=True)
class _ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def derive(self, password: str, length: int) -> bytes:
        """The scrypt key of ``password`` with these parameters and salt."""
        return hashlib.scrypt(
            _utf8(password),
            salt=self.salt,
            n=self.n,
            r=self.r,
            p=self.p,
            maxmem=128 * self.r * (self.n + self.p + 2) + 2**20,
            dklen=length,
        )


# --- the password ------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``, with its parameters, as text to store."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _ScryptHash(_COST, _BLOCK_SIZE, _PARALLELISM, salt, b"").derive(password, _KEY_BYTES)
    fields = (_SCHEME, str(_COST), str(_BLOCK_SIZE), str(_PARALLELISM), _b64(salt), _b64(key))
    return "$".join(fields)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (constant-time).

    Raises:
        InvalidInput: ``stored`` is not a hash ``hash_password`` makes.
    """
    expected = _parse(stored)
    return hmac.compare_digest(expected.derive(password, len(expected.key)), expected.key)


def check_password_hash(stored: str, source: str) -> None:
    """Raise InvalidInput naming ``source`` unless ``stored`` is a usable password hash."""
    try:
        _parse(stored)
    except InvalidInput as error:
        raise InvalidInput(f"{source}: {error}") from None


def check_new_password(password: str) -> None:
    """Raise InvalidInput unless ``password`` is long enough to be set."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters, got {len(password)}"
        )


def password_hash(store: Store, settings: Settings) -> str | None:
    """The password hash in force: the config's, else the stored one; None: no password."""
    return settings.password_hash or store.get_password_hash()


def _parse(stored: str) -> _ScryptHash:
    shape = f"expected {_SCHEME}$N$r$p$salt$key as `jobnest passwd --print-hash` prints it"
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        raise InvalidInput(f"not a password hash: {shape}")
    try:
        n, r, p = (int(field) for field in parts[1:4])
        parsed = _ScryptHash(n, r, p, _unb64(parts[4]), _unb64(parts[5]))
    except (ValueError, binascii.Error):
        raise InvalidInput(f"a password hash with unreadable fields: {shape}") from None
    if not _is_sane(parsed):
        raise InvalidInput(f"a password hash with parameters out of range: {shape}")
    return parsed


def _is_sane(parsed: _ScryptHash) -> bool:
    power_of_two = parsed.n > 1 and parsed.n & (parsed.n - 1) == 0
    return (
        power_of_two
        and parsed.n <= _MAX_COST
        and 1 <= parsed.r <= 32
        and 1 <= parsed.p <= 16
        and len(parsed.salt) >= 8
        and 16 <= len(parsed.key) <= 64
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # any str, even a lone surrogate from JSON


# --- secrets: session ids and API tokens -------------------------------------------------------


def new_secret() -> str:
    """A fresh random secret: 32 bytes, URL-safe text."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The sha256 (hex) under which ``secret`` is stored."""
    return hashlib.sha256(_utf8(secret)).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Whether two secrets are equal, compared in constant time."""
    return hmac.compare_digest(_utf8(given), _utf8(expected))


def start_session(store: Store, *, now: datetime) -> tuple[str, SessionRecord]:
    """A new login session: (the cookie value, its record). Expired sessions are purged."""
    secret = new_secret()
    store.purge_sessions(now=now)
    record = store.create_session(
        digest(secret), new_secret(), now=now, expires_at=now + SESSION_LIFETIME
    )
    return secret, record


def find_session(store: Store, secret: str, *, now: datetime) -> SessionRecord | None:
    """The unexpired session whose cookie value is ``secret``, else None."""
    return store.find_session(digest(secret), now=now)


def issue_token(store: Store, name: str, scope: str, *, now: datetime) -> tuple[str, TokenRecord]:
    """A new API token: (the token, shown once; its record).

    Raises:
        InvalidInput: a bad name (1–128 characters, no control characters) or scope.
    """
    check_token_name(name)
    check_scope(scope)
    secret = new_secret()
    return secret, store.create_token(name, digest(secret), scope, now=now)


def find_token(store: Store, secret: str) -> TokenRecord | None:
    """The unrevoked API token ``secret``, else None."""
    return store.find_token(digest(secret))


def check_token_name(name: str) -> None:
    """Raise InvalidInput unless ``name`` has 1–128 characters and no control character."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise InvalidInput(f"a token name has 1 to {MAX_NAME_LENGTH} characters, got {name!r}")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise InvalidInput(f"a token name may not contain control characters: {name!r}")


def check_scope(scope: str) -> None:
    """Raise InvalidInput unless ``scope`` is one of ``SCOPES``."""
    if scope not in SCOPES:
        raise InvalidInput(f"a token scope is one of {', '.join(SCOPES)}, got {scope!r}")

"""Which encryption keys the stored secrets need, named by fingerprint (never by the key).

A dump records the fingerprints of the keys its secrets are encrypted with; `load` compares them
with the keys configured where it runs before it writes anything, and `validate` checks every
secret decrypts. Secrets are the text columns named `*_encrypted` (connection strings, webhook
secrets, and any later one named the same way): found from the metadata, not listed here.

Keys are built as `crypto.cipher` builds them (`INVENTORY_ENCRYPTION_KEYS`, then the key derived
from `INVENTORY_ENCRYPTION_PASSPHRASE`), but with the passphrase's salt given, so nothing here
writes a settings row (a `load` target is empty, and its salt arrives with the dump).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from sqlalchemy import Column, String, Table, select
from sqlalchemy.engine import Connection

from webapp.models import Base
from webapp.services import crypto

SECRET_SUFFIX = "_encrypted"


@dataclass(frozen=True)
class Key:
    fingerprint: str
    fernet: Fernet
    source: str  # "INVENTORY_ENCRYPTION_KEYS[0]", "passphrase"


def fingerprint(key: bytes | str) -> str:
    """16 hex digits naming a Fernet key: SHA-256 of a label and the key, so the fingerprint
    says nothing about the key and cannot be confused with another hash of it."""
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(b"asset-inventory key fingerprint\x00" + raw).hexdigest()[:16]


def configured_keys(salt: bytes | None) -> list[Key]:
    """The configured keys, first the one that encrypts. `salt`: the passphrase's salt (the
    `encryption_salt` setting), or None when there is none yet."""
    keys = []
    for i, key in enumerate(current_app.config.get("INVENTORY_ENCRYPTION_KEYS") or []):
        raw = key.encode() if isinstance(key, str) else key
        keys.append(Key(fingerprint(raw), Fernet(raw), f"INVENTORY_ENCRYPTION_KEYS[{i}]"))
    passphrase = current_app.config.get("INVENTORY_ENCRYPTION_PASSPHRASE")
    if passphrase and salt is not None:
        raw = crypto.derive_key(passphrase, salt)
        keys.append(Key(fingerprint(raw), Fernet(raw), "INVENTORY_ENCRYPTION_PASSPHRASE"))
    return keys


def stored_salt(connection: Connection) -> bytes | None:
    """The passphrase's salt as the database holds it (None without one)."""
    from webapp.models import Setting

    value = connection.scalar(select(Setting.value).where(Setting.key == crypto.SALT_SETTING))
    return base64.b64decode(value) if isinstance(value, str) else None


def secret_columns() -> list[tuple[Table, Column]]:
    """Every column holding a secret: text columns named `*_encrypted`."""
    return [(table, column) for table in Base.metadata.sorted_tables for column in table.columns
            if column.name.endswith(SECRET_SUFFIX) and isinstance(column.type, String)]


def key_of(token: str, keys: list[Key]) -> Key | None:
    """The configured key that encrypted `token` (its HMAC checks out), or None."""
    data = token.encode()
    for key in keys:
        try:
            key.fernet.decrypt(data)
        except InvalidToken:
            continue
        return key
    return None


@dataclass
class SecretCheck:
    used: dict[str, int]  # fingerprint -> secrets it encrypts
    undecryptable: list[tuple[str, str, str]]  # (table, primary key, column)


def stored_secrets(connection: Connection) -> Iterator[tuple[str, str, str, str]]:
    """(table, primary key as text, column, token) of every stored secret, streamed."""
    for table, column in secret_columns():
        key_columns = list(table.primary_key.columns)
        stmt = (select(*key_columns, column).where(column.is_not(None)).order_by(*key_columns))
        for row in connection.execution_options(yield_per=2000).execute(stmt):
            yield table.name, "/".join(str(v) for v in row[:-1]), column.name, row[-1]


def check_secrets(connection: Connection, keys: list[Key]) -> SecretCheck:
    """Which configured key each stored secret needs; the secrets none of them decrypts."""
    used: dict[str, int] = {}
    bad: list[tuple[str, str, str]] = []
    for table, key, column, token in stored_secrets(connection):
        found = key_of(token, keys)
        if found is None:
            bad.append((table, key, column))
        else:
            used[found.fingerprint] = used.get(found.fingerprint, 0) + 1
    return SecretCheck(used, bad)

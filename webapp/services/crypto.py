"""Encryption of secrets at rest with MultiFernet.

Keys come from `INVENTORY_ENCRYPTION_KEYS` (comma-separated; the first encrypts, all decrypt) or
are derived from `INVENTORY_ENCRYPTION_PASSPHRASE` with PBKDF2-HMAC-SHA256 and a salt kept in the
settings table.
"""

from __future__ import annotations

import base64
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from flask import current_app
from sqlalchemy.orm import Session

from webapp.models import Setting

PBKDF2_ITERATIONS = 600_000
SALT_SETTING = "encryption_salt"


class EncryptionNotConfigured(RuntimeError):
    pass


def derive_key(passphrase: str, salt: bytes, iterations: int = PBKDF2_ITERATIONS) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
    return base64.urlsafe_b64encode(kdf.derive(passphrase.encode()))


def _passphrase_salt(session: Session) -> bytes:
    row = session.get(Setting, SALT_SETTING)
    if row is None:
        row = Setting(key=SALT_SETTING, value=base64.b64encode(os.urandom(16)).decode())
        session.add(row)
        session.flush()
    return base64.b64decode(row.value)


def cipher(session: Session) -> MultiFernet:
    """The app's MultiFernet, built once per process."""
    cached = current_app.extensions.get("inventory_cipher")
    if cached is not None:
        return cached
    keys = list(current_app.config.get("INVENTORY_ENCRYPTION_KEYS") or [])
    passphrase = current_app.config.get("INVENTORY_ENCRYPTION_PASSPHRASE")
    fernets = [Fernet(k.encode() if isinstance(k, str) else k) for k in keys]
    if passphrase:
        fernets.append(Fernet(derive_key(passphrase, _passphrase_salt(session))))
    if not fernets:
        raise EncryptionNotConfigured(
            "No encryption key: set INVENTORY_ENCRYPTION_KEYS or INVENTORY_ENCRYPTION_PASSPHRASE."
        )
    built = MultiFernet(fernets)
    current_app.extensions["inventory_cipher"] = built
    return built


def encrypt(session: Session, plaintext: str) -> str:
    return cipher(session).encrypt(plaintext.encode()).decode()


def decrypt(session: Session, token: str) -> str:
    try:
        return cipher(session).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise EncryptionNotConfigured(
            "This secret was encrypted with a key that is not configured."
        ) from exc

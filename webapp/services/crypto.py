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
from webapp.services.actor import Actor

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


def _rotate_webhook_secrets(session: Session, fernet: MultiFernet) -> list[object]:
    """Webhook secrets (services/webhooks.py) are stored the same way: re-encrypt them too."""
    from sqlalchemy import select, update

    from webapp.models import Webhook

    rows = session.execute(select(Webhook.id, Webhook.secret_encrypted)).all()
    for webhook_id, token in rows:
        try:
            rotated = fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise EncryptionNotConfigured(
                f"Webhook {webhook_id} holds a secret that none of the configured keys can decrypt; "
                "add the old key to INVENTORY_ENCRYPTION_KEYS (after the new one) and retry."
            ) from exc
        session.execute(update(Webhook).where(Webhook.id == webhook_id).values(secret_encrypted=rotated)
                        .execution_options(synchronize_session=False))
    return list(rows)


def rotate(session: Session, actor: Actor) -> int:
    """Re-encrypt every stored secret with the first configured key; one audited `key_rotate`.

    The values do not change, so asset versions do not either (the UPDATE bypasses the ORM's
    version counter on purpose).
    """
    from sqlalchemy import select, update

    from webapp.models import Asset, AuditAction, EventSeverity, Role
    from webapp.services import audit, outbox

    fernet = cipher(session)
    rows = session.execute(
        select(Asset.id, Asset.connection_string_encrypted).where(
            Asset.connection_string_encrypted.is_not(None)
        )
    ).all()
    for asset_id, token in rows:
        try:
            rotated = fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise EncryptionNotConfigured(
                f"Asset {asset_id} holds a secret that none of the configured keys can decrypt; "
                "add the old key to INVENTORY_ENCRYPTION_KEYS (after the new one) and retry."
            ) from exc
        session.execute(
            update(Asset)
            .where(Asset.id == asset_id)
            .values(connection_string_encrypted=rotated)
            .execution_options(synchronize_session=False)
        )
    rows += _rotate_webhook_secrets(session, fernet)
    audit.record(session, actor, AuditAction.key_rotate, "system", None,
                 message=f"re-encrypted {len(rows)} secret(s) with the first configured key")
    outbox.emit(session, "key_rotation", subject=f"The encryption key was rotated by {actor.label}",
                severity=EventSeverity.medium, min_role=Role.admin, link="/audit?action=key_rotate",
                body=f"{len(rows)} stored secret(s) re-encrypted with the first configured key.",
                payload={"secrets": len(rows), "actor": actor.label})
    session.commit()
    return len(rows)

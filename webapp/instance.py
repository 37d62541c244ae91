"""First-run bootstrap for the embedded default: `python -m webapp.instance`.

Generates a secret key and an encryption key into `instance/` (mode 0600) when the environment
does not provide them. Kept out of `create_app()` so the factory has no side effects.
"""

from __future__ import annotations

import os
import secrets

from cryptography.fernet import Fernet

from webapp.config import ENCRYPTION_KEY_FILE, INSTANCE_DIR, SECRET_KEY_FILE


def _write_secret(name: str, value: str) -> bool:
    path = INSTANCE_DIR / name
    if path.exists():
        return False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return True


def ensure_instance_secrets() -> list[str]:
    """Create missing secrets; return a message for each file generated."""
    INSTANCE_DIR.mkdir(mode=0o700, exist_ok=True)
    messages = []
    if not os.environ.get("SECRET_KEY") and _write_secret(
        SECRET_KEY_FILE, secrets.token_urlsafe(48)
    ):
        messages.append(f"Generated a new SECRET_KEY in {INSTANCE_DIR / SECRET_KEY_FILE} (mode 0600).")
    if (
        not os.environ.get("INVENTORY_ENCRYPTION_KEYS")
        and not os.environ.get("INVENTORY_ENCRYPTION_PASSPHRASE")
        and _write_secret(ENCRYPTION_KEY_FILE, Fernet.generate_key().decode())
    ):
        messages.append(
            f"Generated a new encryption key in {INSTANCE_DIR / ENCRYPTION_KEY_FILE} (mode 0600). "
            "Back it up: connection strings cannot be decrypted without it."
        )
    return messages


if __name__ == "__main__":
    for line in ensure_instance_secrets():
        print(line)

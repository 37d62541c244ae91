"""Every setting, read from the environment (and an optional `.env`) in one place."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"

SECRET_KEY_FILE = "secret_key"
ENCRYPTION_KEY_FILE = "encryption_keys"


def _read_instance_file(name: str) -> str | None:
    path = INSTANCE_DIR / name
    if path.is_file():
        return path.read_text().strip() or None
    return None


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Settings for one app instance; built from the environment unless a mapping is given."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        if env is None:
            load_dotenv(PROJECT_ROOT / ".env", override=False)
            env = dict(os.environ)
        self.ENV_NAME = env.get("INVENTORY_ENV", "development")
        self.SQLALCHEMY_DATABASE_URI = env.get(
            "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'inventory.db'}"
        )
        self.REDIS_URL = env.get("REDIS_URL") or None
        # Keys come from the environment in production; `make run` generates them into instance/.
        self.SECRET_KEY = env.get("SECRET_KEY") or _read_instance_file(SECRET_KEY_FILE)
        self.INVENTORY_ENCRYPTION_KEYS = [
            k.strip()
            for k in (
                env.get("INVENTORY_ENCRYPTION_KEYS")
                or _read_instance_file(ENCRYPTION_KEY_FILE)
                or ""
            ).split(",")
            if k.strip()
        ]
        self.INVENTORY_ENCRYPTION_PASSPHRASE = env.get("INVENTORY_ENCRYPTION_PASSPHRASE") or None
        self.MAX_UPLOAD_MB = int(env.get("MAX_UPLOAD_MB", "50"))
        self.MAX_CONTENT_LENGTH = self.MAX_UPLOAD_MB * 1024 * 1024
        self.TESTING = _bool(env.get("TESTING"))
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool(
            env.get("SESSION_COOKIE_SECURE"), default=self.ENV_NAME != "development"
        )
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
        # the web server (webapp/gunicorn_conf.py): gunicorn's gthread worker processes, each
        # serving WEB_THREADS requests at once. On SQLite one process by default: its threads
        # share the in-process jobs and the scheduler thread, and the database has one writer
        # anyway (WEB_CONCURRENCY is gunicorn's own name for the count, still honoured). The
        # engine's default pool (5 connections kept, 10 more on demand) serves 8 request threads
        # beside the job and scheduler threads; more threads than that wait for a connection
        self.WEB_THREADS = int(env.get("WEB_THREADS", "8"))
        self.WEB_WORKERS = int(env.get("WEB_WORKERS") or env.get("WEB_CONCURRENCY")
                               or (1 if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite") else 2))
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.LOGIN_MAX_FAILURES = int(env.get("LOGIN_MAX_FAILURES", "5"))
        self.LOGIN_LOCKOUT_SECONDS = int(env.get("LOGIN_LOCKOUT_SECONDS", "900"))
        self.LOGIN_IP_MAX_FAILURES = int(env.get("LOGIN_IP_MAX_FAILURES", "20"))
        self.ASSETS_PER_PAGE = int(env.get("ASSETS_PER_PAGE", "50"))
        # imports: records per committed batch; seconds without a heartbeat before a running
        # import is declared dead; seconds an RQ job may run
        self.IMPORT_BATCH_SIZE = int(env.get("IMPORT_BATCH_SIZE", "5000"))
        self.IMPORT_STALE_SECONDS = int(env.get("IMPORT_STALE_SECONDS", "300"))
        self.IMPORT_JOB_TIMEOUT = int(env.get("IMPORT_JOB_TIMEOUT", "3600"))
        # bulk actions and their undo (change sets): at most this many assets are applied in
        # the request, more by a job; assets per committed batch; heartbeat and RQ timeouts
        self.BULK_INLINE_MAX = int(env.get("BULK_INLINE_MAX", "1000"))
        self.BULK_BATCH_SIZE = int(env.get("BULK_BATCH_SIZE", "5000"))
        self.BULK_STALE_SECONDS = int(env.get("BULK_STALE_SECONDS", "300"))
        self.BULK_JOB_TIMEOUT = int(env.get("BULK_JOB_TIMEOUT", "3600"))
        # policy evaluation (SPEC §12): assets per committed batch of a full re-evaluation
        self.POLICY_BATCH_SIZE = int(env.get("POLICY_BATCH_SIZE", "1000"))
        self.POLICY_JOB_TIMEOUT = int(env.get("POLICY_JOB_TIMEOUT", "7200"))
        # scheduled tasks (SPEC §13): a scheduler thread in each web process (one acts at a
        # time), by default only without Redis; with Redis, run `flask scheduler` instead
        self.SCHEDULER_THREAD = _bool(env.get("SCHEDULER_THREAD"), default=not self.REDIS_URL)
        # a directory for compiled templates, shared by every process and app instance pointed at
        # it (Jinja checks each template's source before using its cached code): a new process
        # renders its first pages without compiling ~90 templates first
        self.TEMPLATE_CACHE_DIR = env.get("TEMPLATE_CACHE_DIR") or None
        # webhooks (SPEC §9, §13): private, loopback and link-local receivers only when true (tests,
        # closed networks); seconds a receiver has to answer; send right after an event's commit
        # (else only the scheduler's minute sweep sends)
        self.WEBHOOK_ALLOW_PRIVATE = _bool(env.get("WEBHOOK_ALLOW_PRIVATE"))
        self.WEBHOOK_TIMEOUT_SECONDS = float(env.get("WEBHOOK_TIMEOUT_SECONDS", "10"))
        self.WEBHOOK_SEND_ON_COMMIT = _bool(env.get("WEBHOOK_SEND_ON_COMMIT"), default=True)
        # backups (SPEC §8): `flask backup` dumps into BACKUP_DIR, keeping the newest BACKUP_KEEP
        self.BACKUP_DIR = env.get("BACKUP_DIR") or None
        self.BACKUP_KEEP = int(env.get("BACKUP_KEEP", "7"))
        # notifications by e-mail (SPEC §13): off without SMTP_URL (smtp://user:pass@host:port,
        # ?starttls=true, or smtps:// for implicit TLS); the sender; the app's address for links
        self.SMTP_URL = env.get("SMTP_URL") or None
        self.SMTP_FROM = env.get("SMTP_FROM") or None
        self.APP_URL = env.get("APP_URL") or None
        # the dashboard's, /policy's and the navigation's counts (services/cached_counts.py):
        # reused at most this many seconds, and dropped at once by the commits that change them;
        # 0 computes them on every page
        self.COUNTS_CACHE_SECONDS = int(env.get("COUNTS_CACHE_SECONDS", "60"))

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if k.isupper()}


COUNTS_CACHE_PREFIX = "inventory:counts:"


def counts_cache(config: dict[str, object]) -> dict[str, object]:
    """Flask-Caching's settings for the counts cache, from the app's final config: Redis when
    REDIS_URL is set (shared by every process), else in-process (the embedded default)."""
    settings: dict[str, object] = {"CACHE_KEY_PREFIX": COUNTS_CACHE_PREFIX,
                                   "CACHE_DEFAULT_TIMEOUT": config.get("COUNTS_CACHE_SECONDS", 60)}
    if int(config.get("COUNTS_CACHE_SECONDS") or 0) <= 0:  # type: ignore[call-overload]
        return settings | {"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": True}
    if config.get("REDIS_URL"):
        # a Redis that hangs costs a page at most this long; then the cache pauses
        return settings | {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": config["REDIS_URL"],
                           "CACHE_OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
    return settings | {"CACHE_TYPE": "SimpleCache"}

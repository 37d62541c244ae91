"""Webhooks (SPEC §13): admin-registered receivers of outbox events.

    fan_out(session, event)          # the dispatcher: one pending delivery per subscribed webhook
    send_due(session, now=…)         # the scheduler, every minute: send what is due
    send_deliveries(session, ids)    # the webhooks job, right after the dispatcher's commit

A delivery is a POST of one JSON body, signed with the webhook's secret; its id (the
`X-Inventory-Delivery` header) is the same on every retry and redelivery, so a receiver can drop
repeats. Each attempt runs in a short transaction of its own and is logged (`webhook_attempts`);
a failed one is retried with exponential backoff and jitter, up to `MAX_ATTEMPTS`, and the last
failure raises a `webhook_failed` outbox event for admins.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from flask import current_app
from sqlalchemy import delete as delete_
from sqlalchemy import exists, func, literal_column, select
from sqlalchemy import update as update_
from sqlalchemy.orm import Session

from webapp.models import AuditAction, EventSeverity, OutboxEvent, Role
from webapp.models.base import utcnow
from webapp.models.webhook import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from webapp.services import audit, crypto, outbox, text, webhook_urls
from webapp.services.actor import Actor
from webapp.services.errors import InvalidState, NotFound, ValidationFailed

log = logging.getLogger(__name__)

WEBHOOK_FAILED = "webhook_failed"
NEW_DELIVERIES = "webhook_deliveries_new"  # session.info: ids fan_out added (the job kicks them)


# --- the body ---------------------------------------------------------------------------------

def event_body(event_id: uuid.UUID, kind: str, *, created_at: datetime, subject: str, severity: str,
               link: str | None, data: dict[str, Any]) -> str:
    """The exact JSON text a receiver gets (and the signature covers)."""
    return json.dumps({
        "id": str(event_id),
        "event": kind,
        "created_at": created_at.isoformat(),
        "subject": subject,
        "severity": severity,
        "link": link,
        "data": data,
    }, separators=(",", ":"), ensure_ascii=False, sort_keys=False, default=str)


def body_of(event: OutboxEvent) -> str:
    return event_body(event.id, event.kind, created_at=event.created_at or utcnow(), subject=event.subject,
                      severity=str(getattr(event.severity, "value", event.severity)), link=event.link,
                      data=event.payload or {})


# --- fan out ----------------------------------------------------------------------------------

def _subscribed(session: Session, kind: str) -> Any:
    """SQL: the webhook's `kinds` list holds `kind`."""
    if session.get_bind().dialect.name == "postgresql":
        return Webhook.kinds.op("?")(kind)  # jsonb: the array has this string element
    values = func.json_each(Webhook.kinds).table_valued("value")
    return exists(select(literal_column("1")).select_from(values).where(values.c.value == kind))


def fan_out(session: Session, event: OutboxEvent) -> int:
    """Add one pending delivery per active webhook subscribed to `event.kind`, in the caller's
    (the dispatcher's) transaction, and return how many. Nothing is sent here: the webhooks job
    sends them once the caller has committed (or `send_due` does, a minute later at most).
    Running again for the same event adds nothing (one delivery per webhook and event)."""
    already = exists().where(WebhookDelivery.webhook_id == Webhook.id, WebhookDelivery.event_id == event.id)
    webhook_ids = list(session.scalars(
        select(Webhook.id).where(Webhook.active.is_(True), _subscribed(session, event.kind), ~already)
    ))
    if not webhook_ids:
        return 0
    body = body_of(event)
    now = utcnow()
    rows = [
        {"id": uuid.uuid4(), "webhook_id": webhook_id, "event_id": event.id, "kind": event.kind,
         "body": body, "status": DeliveryStatus.pending, "attempts": 0, "next_attempt_at": now,
         "created_at": now}
        for webhook_id in webhook_ids
    ]
    session.execute(WebhookDelivery.__table__.insert(), rows)
    session.info.setdefault(NEW_DELIVERIES, []).extend(row["id"] for row in rows)
    return len(rows)


# --- settings ---------------------------------------------------------------------------------

MAX_ATTEMPTS = 8  # the first try and seven retries, over about eighteen hours
BACKOFF_BASE = timedelta(minutes=1)  # the first retry; each next one waits three times longer
BACKOFF_CAP = timedelta(hours=12)
JITTER = 0.2  # ± 20 %, so receivers coming back up are not hit by every retry at once
EXCERPT_BYTES = 500
SENDERS = 8  # deliveries sent at once by one send_due / job (a slow receiver holds one only)
NAME_MAX = 100
TEST_KIND = "test"  # a Send test delivery: not an outbox kind, tried once, never raises webhook_failed


def allow_private() -> bool:
    return bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE"))


def require_https() -> bool:
    """https is required outside development (INVENTORY_ENV, as for the Secure session cookie)."""
    return current_app.config.get("ENV_NAME", "development") != "development"


def timeout_seconds() -> float:
    return float(current_app.config.get("WEBHOOK_TIMEOUT_SECONDS") or 10)


def check_url(url: str) -> webhook_urls.Target:
    """The guard with this app's settings (UnsafeURL when refused)."""
    return webhook_urls.check(url, allow_private=allow_private(), require_https=require_https())


def backoff(attempts: int, *, rand: Callable[[float, float], float] = random.uniform) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: 1 min × 3^(n-1), at most 12 h,
    ± 20 % jitter."""
    delay = min(BACKOFF_BASE * 3 ** max(attempts - 1, 0), BACKOFF_CAP)
    return delay * rand(1 - JITTER, 1 + JITTER)


def signature(secret: str, body: bytes) -> str:
    """The `X-Inventory-Signature` header's value: sha256=<hex HMAC-SHA256 of the raw body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- the webhooks themselves (admin, audited) -------------------------------------------------

def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _validated(name: Any, url: Any, kinds: Any, *, unchanged_url: str | None = None) -> tuple[str, str, list[str]]:
    """The cleaned fields, or ValidationFailed naming each bad one. A URL equal to
    `unchanged_url` (the saved one) is not checked again here (it is at every delivery), so a
    webhook whose host stopped resolving can still be renamed or turned off."""
    errors: dict[str, str] = {}
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        errors["name"] = "Give the webhook a name people will recognise."
    elif len(name) > NAME_MAX or text.UNSTORABLE.search(name) or any(ord(c) < 32 for c in name):
        errors["name"] = f"Keep the name under {NAME_MAX} characters of plain text."
    url = url.strip() if isinstance(url, str) else ""
    try:
        if url != unchanged_url:
            check_url(url)
    except webhook_urls.UnsafeURL as exc:
        errors["url"] = exc.reason
    chosen: list[str] = []
    if not isinstance(kinds, list | tuple) or not kinds:
        errors["kinds"] = "Choose at least one kind of event to send."
    else:
        unknown = [k for k in kinds if not isinstance(k, str) or k not in outbox.KINDS]
        if unknown:
            errors["kinds"] = "Choose among the listed kinds of event."
        chosen = [k for k in outbox.KINDS if k in kinds]  # the registry's order, no repeats
    if errors:
        raise ValidationFailed(errors, "The webhook cannot be saved.")
    return name, url, chosen


def get(session: Session, webhook_id: uuid.UUID | str) -> Webhook:
    webhook = session.get(Webhook, _uuid(webhook_id))
    if webhook is None:
        raise NotFound("No such webhook.")
    return webhook


def create(session: Session, actor: Actor, *, name: str, url: str, kinds: list[str],
           active: bool = True) -> tuple[Webhook, str]:
    """Register a webhook; returns it and its secret, which is shown this once (stored
    encrypted, never shown again). Audited (`create`, the secret masked). ValidationFailed
    names the field: name, url (the guard's reason) or kinds."""
    name, url, kinds = _validated(name, url, kinds)
    secret = new_secret()
    now = utcnow()
    webhook = Webhook(id=uuid.uuid4(), name=name, url=url, kinds=kinds, active=bool(active),
                      secret_encrypted=crypto.encrypt(session, secret), created_by=actor.user_id,
                      created_at=now, updated_at=now)
    session.add(webhook)
    audit.record(session, actor, AuditAction.create, "webhook", webhook.id,
                 changes={"name": [None, name], "url": [None, url], "kinds": [None, kinds],
                          "active": [None, webhook.active], "secret": [None, "set"]},
                 message=f"webhook “{name}” created")
    session.commit()
    log.info("webhook %s created by %s", webhook.id, actor.label)
    return webhook, secret


def update(session: Session, actor: Actor, webhook_id: uuid.UUID | str, *, name: str, url: str,
           kinds: list[str], active: bool) -> Webhook:
    """Change a webhook's name, URL, kinds or active flag; audited with the fields that changed.
    Turning it off fails its pending deliveries (they would never be sent)."""
    webhook = get(session, webhook_id)
    name, url, kinds = _validated(name, url, kinds, unchanged_url=webhook.url)
    new = {"name": name, "url": url, "kinds": kinds, "active": bool(active)}
    changes = {k: [getattr(webhook, k), v] for k, v in new.items() if getattr(webhook, k) != v}
    if not changes:
        return webhook
    for field, (_old, value) in changes.items():
        setattr(webhook, field, value)
    webhook.updated_at = utcnow()
    stopped = 0
    if "active" in changes and not webhook.active:
        stopped = _stop_pending(session, webhook.id, "the webhook was turned off")
    audit.record(session, actor, AuditAction.update, "webhook", webhook.id, changes=changes,
                 message=f"webhook “{webhook.name}” changed"
                         + (f"; {stopped} pending deliveries dropped" if stopped else ""))
    session.commit()
    return webhook


def regenerate_secret(session: Session, actor: Actor, webhook_id: uuid.UUID | str) -> str:
    """Replace the webhook's secret; returns the new one, shown this once. Deliveries sent from
    now on (retries included) are signed with it. Audited, the secret masked."""
    webhook = get(session, webhook_id)
    secret = new_secret()
    webhook.secret_encrypted = crypto.encrypt(session, secret)
    webhook.updated_at = utcnow()
    audit.record(session, actor, AuditAction.update, "webhook", webhook.id,
                 changes={"secret": ["set", "set"]}, message=f"webhook “{webhook.name}”: new secret")
    session.commit()
    return secret


def delete(session: Session, actor: Actor, webhook_id: uuid.UUID | str) -> None:
    """Remove a webhook with its deliveries and attempts; audited."""
    webhook = get(session, webhook_id)
    audit.record(session, actor, AuditAction.delete, "webhook", webhook.id,
                 changes={"name": [webhook.name, None], "url": [webhook.url, None],
                          "kinds": [webhook.kinds, None], "active": [webhook.active, None]},
                 message=f"webhook “{webhook.name}” deleted")
    # explicitly, not by the foreign keys' cascade alone: SQLite enforces none by default
    deliveries_of = select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook.id)
    session.execute(delete_(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries_of)))
    session.execute(delete_(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id))
    session.delete(webhook)
    session.commit()


def _stop_pending(session: Session, webhook_id: uuid.UUID, why: str) -> int:
    now = utcnow()
    pending = list(session.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status == DeliveryStatus.pending)))
    if pending:
        session.execute(update_(WebhookDelivery).where(WebhookDelivery.id.in_(pending)).values(
            status=DeliveryStatus.failed, finished_at=now, next_attempt_at=None))
        session.execute(WebhookAttempt.__table__.insert(), [
            {"delivery_id": d, "attempted_at": now, "status_code": None, "duration_ms": 0,
             "response_excerpt": None, "error": f"not sent: {why}"} for d in pending])
    return len(pending)


# --- test and redeliver (admin, audited) ------------------------------------------------------

def send_test(session: Session, actor: Actor, webhook_id: uuid.UUID | str, *,
              now: datetime | None = None) -> WebhookDelivery:
    """Queue a `test` delivery to the webhook (a synthetic event, not in the outbox, tried
    once). It is sent right after this commit by the webhooks job, or by the next sweep."""
    webhook = get(session, webhook_id)
    if not webhook.active:
        raise InvalidState("This webhook is turned off; turn it on to send a test.")
    now = now or utcnow()
    event_id = uuid.uuid4()
    body = event_body(event_id, TEST_KIND, created_at=now, severity="info", link="/admin/webhooks",
                      subject=f"Test delivery to webhook “{webhook.name}”",
                      data={"webhook_id": str(webhook.id), "sent_by": actor.label})
    delivery = WebhookDelivery(id=uuid.uuid4(), webhook_id=webhook.id, event_id=event_id, kind=TEST_KIND,
                               body=body, status=DeliveryStatus.pending, attempts=0,
                               next_attempt_at=now, created_at=now)
    session.add(delivery)
    audit.record(session, actor, AuditAction.update, "webhook", webhook.id,
                 message=f"test delivery {delivery.id} sent to webhook “{webhook.name}”")
    session.info.setdefault(NEW_DELIVERIES, []).append(delivery.id)
    session.commit()
    return delivery


def redeliver(session: Session, actor: Actor, delivery_id: uuid.UUID | str, *,
              now: datetime | None = None) -> WebhookDelivery:
    """Send a finished delivery again: the same id and the same body (the receiver can tell it
    is a repeat), a fresh round of attempts. A delivery still pending is refused (409)."""
    delivery = session.get(WebhookDelivery, _uuid(delivery_id), with_for_update=True)
    if delivery is None:
        raise NotFound("No such delivery.")
    if delivery.status is DeliveryStatus.pending:
        raise InvalidState("This delivery is still being sent; wait for it to finish.")
    webhook = get(session, delivery.webhook_id)
    if not webhook.active:
        raise InvalidState("This webhook is turned off; turn it on to redeliver.")
    previous = delivery.status
    delivery.status = DeliveryStatus.pending
    delivery.attempts = 0
    delivery.next_attempt_at = now or utcnow()
    delivery.finished_at = None
    audit.record(session, actor, AuditAction.update, "webhook", webhook.id,
                 message=f"delivery {delivery.id} ({delivery.kind}, {previous.value}) redelivered")
    session.info.setdefault(NEW_DELIVERIES, []).append(delivery.id)
    session.commit()
    return delivery


# --- sending ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prepared:
    """What one attempt needs, read before the send so no transaction stays open during it."""

    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    webhook_name: str
    url: str
    secret: str
    kind: str
    body: str
    attempt: int  # this attempt's number in the round (1 = first)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    duration_ms: int
    excerpt: str | None
    error: str | None


def send_due(session: Session, *, now: datetime | None = None, limit: int = 100) -> int:
    """Send up to `limit` pending deliveries whose next attempt is due (the scheduler, every
    minute); returns how many were attempted. Each is claimed, sent and recorded in short
    transactions of its own, several at once, so a hanging receiver holds up nothing else."""
    now = now or utcnow()
    return _send(session, _claim(session, now=now, limit=limit), now=now)


def send_deliveries(session: Session, delivery_ids: list[uuid.UUID | str], *,
                    now: datetime | None = None) -> int:
    """Send these deliveries now if still pending and due (the webhooks job, right after the
    commit that created them); one already claimed by `send_due` is left to it."""
    now = now or utcnow()
    ids = [_uuid(d) for d in delivery_ids]
    return _send(session, _claim(session, now=now, limit=len(ids), ids=ids), now=now)


def _claim(session: Session, *, now: datetime, limit: int, ids: list[uuid.UUID] | None = None) -> list[Prepared]:
    """Lease due deliveries (their next attempt moves past the send's timeout, so no other
    sender takes them meanwhile and a crashed one's are retried later), and commit."""
    query = (
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.status == DeliveryStatus.pending, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    if ids is not None:
        query = query.where(WebhookDelivery.id.in_(ids))
    claimed = []
    lease = now + timedelta(seconds=timeout_seconds() * 3 + 60)
    try:
        for delivery, webhook in session.execute(query).tuples():
            delivery.next_attempt_at = lease
            claimed.append(Prepared(
                delivery_id=delivery.id, webhook_id=webhook.id, webhook_name=webhook.name, url=webhook.url,
                secret=crypto.decrypt(session, webhook.secret_encrypted), kind=delivery.kind,
                body=delivery.body, attempt=delivery.attempts + 1))
        session.commit()
    except Exception:
        session.rollback()
        raise
    return claimed


def _send(session: Session, claimed: list[Prepared], *, now: datetime) -> int:
    if not claimed:
        return 0
    options = {"allow_private": allow_private(), "require_https": require_https(),
               "timeout": timeout_seconds()}
    with ThreadPoolExecutor(max_workers=min(SENDERS, len(claimed)), thread_name_prefix="webhook") as pool:
        futures = {pool.submit(post, p, **options): p for p in claimed}
        for future in as_completed(futures):
            prepared = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # a bug must not lose the attempt: log it as one
                log.exception("webhook delivery %s: unexpected error", prepared.delivery_id)
                outcome = Outcome(False, None, 0, None, f"internal error: {type(exc).__name__}")
            _record(session, prepared, outcome, now=now)
    return len(claimed)


def post(prepared: Prepared, *, allow_private: bool, require_https: bool, timeout: float) -> Outcome:
    """One attempt: the guard (after DNS), then the POST to the address it checked. No database
    here (it runs on a sender thread)."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = webhook_urls.check(prepared.url, allow_private=allow_private, require_https=require_https)
    except webhook_urls.UnsafeURL as exc:
        return Outcome(False, None, took(), None, f"refused, not sent: {exc.reason}")
    body = prepared.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "AssetInventory-Webhooks/1",
        "X-Inventory-Event": prepared.kind,
        "X-Inventory-Delivery": str(prepared.delivery_id),
        "X-Inventory-Signature": signature(prepared.secret, body),
    }
    url, extensions = _pinned(target, headers)
    deadline = started + timeout
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client, \
                client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response:
            excerpt = _excerpt(response, deadline)
            code = response.status_code
    except httpx.TimeoutException:
        return Outcome(False, None, took(), None, f"no answer within {timeout:g} s (timeout)")
    except httpx.HTTPError as exc:
        return Outcome(False, None, took(), None, _describe(exc))
    if 200 <= code < 300:
        return Outcome(True, code, took(), excerpt, None)
    if 300 <= code < 400:
        where = response.headers.get("location", "")[:300]
        return Outcome(False, code, took(), excerpt, f"redirect to {where or '?'} not followed")
    return Outcome(False, code, took(), excerpt, f"the receiver answered {code}")


def _pinned(target: webhook_urls.Target, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The URL with the checked address in place of the host name, so the connection goes where
    the guard looked (no second DNS lookup an attacker could answer differently). The Host
    header and, for https, SNI and certificate checks still use the host name."""
    parts = urlsplit(target.url)
    address = target.address
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    default_port = 443 if target.scheme == "https" else 80
    headers["Host"] = target.host if target.port == default_port else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    path = parts.path or "/"
    return urlunsplit((target.scheme, netloc, path, parts.query, "")), extensions


def _excerpt(response: httpx.Response, deadline: float) -> str:
    """The response's first 500 bytes (the rest is not read), as text."""
    chunk = bytearray()
    for part in response.iter_raw():
        chunk.extend(part)
        if len(chunk) >= EXCERPT_BYTES or time.monotonic() > deadline:
            break
    return bytes(chunk[:EXCERPT_BYTES]).decode("utf-8", "replace").replace("\x00", "\ufffd")


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect: {str(exc)[:200] or type(exc).__name__}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the receiver closed the connection: {str(exc)[:200] or 'no response'}"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return f"the connection broke: {str(exc)[:200] or type(exc).__name__}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _record(session: Session, prepared: Prepared, outcome: Outcome, *, now: datetime) -> None:
    """Log the attempt and move the delivery on (succeeded, retry later, or failed for good),
    in a transaction of its own."""
    try:
        delivery = session.get(WebhookDelivery, prepared.delivery_id, with_for_update=True,
                               populate_existing=True)
        if delivery is None or delivery.status is not DeliveryStatus.pending:
            session.commit()  # deleted, or turned off meanwhile
            return
        session.add(WebhookAttempt(delivery_id=delivery.id, attempted_at=now, status_code=outcome.status_code,
                                   duration_ms=outcome.duration_ms, response_excerpt=outcome.excerpt,
                                   error=outcome.error))
        delivery.attempts += 1
        if outcome.ok:
            delivery.status = DeliveryStatus.succeeded
            delivery.finished_at = now
            delivery.next_attempt_at = None
        elif delivery.kind == TEST_KIND or delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.failed
            delivery.finished_at = now
            delivery.next_attempt_at = None
            _raise_failed(session, prepared, delivery, outcome)
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
        session.commit()
    except Exception:
        session.rollback()
        raise
    log.info("webhook delivery %s attempt %d: %s", prepared.delivery_id, prepared.attempt,
             "ok" if outcome.ok else (outcome.error or outcome.status_code))


def _raise_failed(session: Session, prepared: Prepared, delivery: WebhookDelivery, outcome: Outcome) -> None:
    """A `webhook_failed` event for admins, except for a test delivery (the admin is watching)
    and for deliveries of `webhook_failed` itself (a broken receiver subscribed to it would
    otherwise raise one more for each of its failures, forever)."""
    if delivery.kind in (TEST_KIND, WEBHOOK_FAILED):
        return
    outbox.emit(
        session, WEBHOOK_FAILED, severity=EventSeverity.high, min_role=Role.admin,
        subject=f"Webhook “{prepared.webhook_name}” gave up on a {delivery.kind} event after "
                f"{delivery.attempts} attempts",
        body=f"Last error: {outcome.error or outcome.status_code}",
        link=f"/admin/webhooks/{prepared.webhook_id}/deliveries",
        payload={"webhook_id": str(prepared.webhook_id), "webhook_name": prepared.webhook_name,
                 "delivery_id": str(delivery.id), "event_id": str(delivery.event_id),
                 "event": delivery.kind, "attempts": delivery.attempts,
                 "last_error": outcome.error, "last_status_code": outcome.status_code},
    )


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("No such webhook or delivery.") from None

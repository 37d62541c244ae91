"""In-app notifications and their e-mails (SPEC §13).

    fan_out(session, event)                  # the dispatcher: one row per person it is for
    unread_count(session, user_id)           # the bell (one indexed count)
    list_page(session, user_id, unread=True, kind=None, before=None)
    mark_read(session, user_id, notification_id); mark_all_read(session, user_id)
    preferences(session, user_id); update_preferences(session, actor, user_id, …)
    send_immediate(session)                  # the dispatcher, after fan_out's rows committed
    send_digests(session)                    # the daily "digests" scheduled task

A person with no preference row gets every kind from `info` up, by e-mail, as a daily digest.
Reading a notification is the person's own state, not a change to the inventory: it is not
audited (changing one's preferences is, as an update of the user).
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Text,
    and_,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from webapp.models import (
    AuditAction,
    EmailMode,
    EventSeverity,
    Notification,
    NotificationPreference,
    OutboxEvent,
    Role,
    User,
)
from webapp.models.base import utcnow
from webapp.models.enums import ROLE_RANK
from webapp.services import audit, cached_counts, mail
from webapp.services.actor import Actor
from webapp.services.errors import NotFound, ValidationFailed
from webapp.services.outbox import KINDS

log = logging.getLogger(__name__)

KEEP_DAYS = 90  # read notifications older than this are pruned by maintenance

PAGE_SIZE = 50
BELL_CAP = 99  # the bell counts at most this many (then says "99+"): cheap however many are unread
DIGEST_ITEMS = 50  # notifications listed in one digest; the rest are counted
MAIL_RETRY_FOR = timedelta(days=1)  # an immediate e-mail not sent within a day is given up
MAIL_BATCH = 200
DEFAULTS = {"muted_kinds": [], "min_severity": EventSeverity.info, "email": True,
            "email_mode": EmailMode.digest}


# --- fan-out ----------------------------------------------------------------------------------

def _muted(kind: str) -> Any:
    # the kinds a person turned off are a JSON list of identifiers; its text holds `"kind"`
    # exactly when the kind is in it, on every backend (escaped: `_` is a LIKE wildcard)
    return cast(NotificationPreference.muted_kinds, Text).contains(f'"{kind}"', autoescape=True)


def fan_out(session: Session, event: OutboxEvent, *, mail_enabled: bool = False, now: datetime | None = None) -> int:
    """Create the event's notifications in the caller's transaction, in one INSERT … SELECT:
    for `event.recipient_id` if set, else for every active user of at least `event.min_role`;
    minus those whose preferences turn the kind off or ask for a higher severity, and those
    who already have it (a retried dispatch adds nobody twice). With `mail_enabled`, the rows of
    people who chose immediate e-mail are marked for `send_immediate`. Returns the rows added."""
    now = now or utcnow()
    pref = NotificationPreference
    severity = EventSeverity(event.severity)
    allowed = [s.value for s in EventSeverity if s.rank <= severity.rank]
    if event.recipient_id is not None:
        whom = User.id == event.recipient_id
    else:
        min_rank = ROLE_RANK[Role(event.min_role)]
        whom = User.role.in_([r.value for r, rank in ROLE_RANK.items() if rank >= min_rank])
    wants_mail = (and_(pref.email.is_(True), pref.email_mode == EmailMode.immediate.value)
                  if mail_enabled else false())
    chosen = (
        select(
            User.id, literal(event.id, Notification.event_id.type), literal(event.kind),
            literal(severity.value), literal(event.subject), literal(event.link, Notification.link.type),
            literal(now, Notification.created_at.type),
            func.coalesce(wants_mail, false()),
        )
        .select_from(User)
        .outerjoin(pref, pref.user_id == User.id)
        .where(
            User.active.is_(true()), whom,
            or_(pref.user_id.is_(None), and_(~_muted(event.kind), pref.min_severity.in_(allowed))),
            ~exists().where(Notification.user_id == User.id, Notification.event_id == event.id),
        )
    )
    result = session.execute(
        insert(Notification.__table__).execution_options(preserve_rowcount=True).from_select(
            ["user_id", "event_id", "kind", "severity", "subject", "link", "created_at", "mail_pending"],
            chosen,
        )
    )
    return max(result.rowcount or 0, 0)


# --- reading ----------------------------------------------------------------------------------

def unread_count(session: Session, user_id: uuid.UUID) -> int:
    """The person's unread notifications, counted up to BELL_CAP + 1 (one statement), kept in
    the counts cache until a commit writes notifications: every page's bell reads it."""
    def compute() -> int:
        capped = (select(literal(1)).where(Notification.user_id == user_id, Notification.read_at.is_(None))
                  .limit(BELL_CAP + 1).subquery())
        return session.scalar(select(func.count()).select_from(capped)) or 0

    return cached_counts.read(f"unread:{user_id}", ("notifications",), compute, session=session)


@dataclass(frozen=True)
class NotificationPage:
    items: list[Notification]
    next_before: int | None  # the `before` of the next (older) page


def parse_filters(show: str | None, kind: str | None, before: str | None) -> tuple[bool, str | None, int | None]:
    """The list's query arguments (`show` all or unread, `kind`, the `before` cursor), checked:
    ValidationFailed names a bad one. Returns (unread only, kind, before)."""
    errors: dict[str, str] = {}
    kind = (kind or "").strip() or None
    if kind is not None and kind not in KINDS:
        errors["kind"] = "Choose one of the notification kinds."
    cursor = None
    if before:
        try:
            cursor = int(before)
            if not 0 < cursor < 2**63:
                raise ValueError
        except ValueError:
            errors["before"] = "The page cursor is not valid; start again from the first page."
    show = (show or "").strip().lower()
    if show not in ("", "0", "1", "true", "false", "all", "unread"):
        errors["show"] = "Choose all or unread."
    if errors:
        raise ValidationFailed(errors, "The notification filter is not valid.")
    return show in ("1", "true", "unread"), kind, cursor


def list_page(session: Session, user_id: uuid.UUID, *, unread: bool = False, kind: str | None = None,
              before: int | None = None, limit: int = PAGE_SIZE) -> NotificationPage:
    """One page of the person's notifications, newest first (keyset on id)."""
    query = select(Notification).where(Notification.user_id == user_id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    if kind:
        query = query.where(Notification.kind == kind)
    if before:
        query = query.where(Notification.id < before)
    rows = list(session.scalars(query.order_by(Notification.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return NotificationPage(rows, rows[-1].id if more and rows else None)


def mark_read(session: Session, user_id: uuid.UUID, notification_id: int | str) -> Notification:
    """Mark one of the person's notifications read (NotFound for anyone else's)."""
    try:
        ident = int(notification_id)
    except (TypeError, ValueError):
        raise NotFound("No such notification.") from None
    row = session.get(Notification, ident) if 0 < ident < 2**63 else None
    if row is None or row.user_id != user_id:
        raise NotFound("No such notification.")
    if row.read_at is None:
        row.read_at = utcnow()
    session.commit()
    return row


def mark_all_read(session: Session, user_id: uuid.UUID) -> int:
    """Mark every unread notification of the person read; how many."""
    count = session.execute(
        update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return count or 0


# --- preferences --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preferences:
    muted_kinds: frozenset[str]
    min_severity: EventSeverity
    email: bool
    email_mode: EmailMode

    @property
    def kinds(self) -> list[str]:
        return [k for k in KINDS if k not in self.muted_kinds]


def preferences(session: Session, user_id: uuid.UUID) -> Preferences:
    row = session.get(NotificationPreference, user_id)
    if row is None:
        return Preferences(frozenset(), EventSeverity.info, True, EmailMode.digest)
    return Preferences(frozenset(row.muted_kinds or []), EventSeverity(row.min_severity), bool(row.email),
                       EmailMode(row.email_mode))


def update_preferences(session: Session, actor: Actor, user_id: uuid.UUID, *, kinds: list[str],
                       min_severity: str, email: bool, email_mode: str) -> Preferences:
    """Save what the person receives; audited as an update of the user (what changed).
    ValidationFailed (422) names an unknown kind, severity or e-mail mode."""
    errors: dict[str, str] = {}
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        errors["kinds"] = "Choose among the listed kinds."
    if min_severity not in EventSeverity.__members__:
        errors["min_severity"] = f"Choose one of: {', '.join(EventSeverity.__members__)}."
    if email_mode not in EmailMode.__members__:
        errors["email_mode"] = "Choose a daily digest or immediate e-mails."
    if errors:
        raise ValidationFailed(errors, "Your notification settings were not saved.")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    before = preferences(session, user_id)
    muted = sorted(set(KINDS) - set(kinds))
    row = session.get(NotificationPreference, user_id)
    if row is None:
        row = NotificationPreference(user_id=user_id, last_digest_at=None)
        session.add(row)
    row.muted_kinds, row.min_severity = muted, EventSeverity(min_severity)
    row.email, row.email_mode = bool(email), EmailMode(email_mode)
    after = Preferences(frozenset(muted), EventSeverity(min_severity), bool(email), EmailMode(email_mode))
    changes: dict[str, list[Any]] = {}
    if before.muted_kinds != after.muted_kinds:
        changes["notification_kinds"] = [before.kinds, after.kinds]
    for field, name in (("min_severity", "notification_min_severity"), ("email", "notification_email"),
                        ("email_mode", "notification_email_mode")):
        old, new = getattr(before, field), getattr(after, field)
        if old != new:
            changes[name] = [old, new]
    if changes:
        audit.record(session, actor, AuditAction.update, "user", user_id, changes,
                     message="notification settings")
    session.commit()
    return after


# --- e-mail ---------------------------------------------------------------------------------

def send_immediate(session: Session, *, now: datetime | None = None) -> int:
    """Send the immediate e-mails owed (`mail_pending`), one per notification; the number sent.
    Each is claimed (cleared) and committed before it is sent, so two dispatchers never send
    one twice; one that fails is marked pending again and retried by the next dispatch, for a
    day. Nothing is sent (or claimed) without `SMTP_URL`."""
    config = mail.settings()
    if config is None:
        return 0
    now = now or utcnow()
    # given up: owed for more than a day (the server was down all that time)
    session.execute(update(Notification).where(Notification.mail_pending.is_(True),
                                               Notification.created_at < now - MAIL_RETRY_FOR)
                    .values(mail_pending=False).execution_options(synchronize_session=False))
    claimed = select(Notification.id).where(Notification.mail_pending.is_(True)).order_by(
        Notification.id).limit(MAIL_BATCH).with_for_update(skip_locked=True)
    ids = list(session.scalars(
        update(Notification).where(Notification.id.in_(claimed.scalar_subquery()))
        .values(mail_pending=False).returning(Notification.id).execution_options(synchronize_session=False)))
    session.commit()
    if not ids:
        return 0
    rows = session.execute(
        select(Notification, User.email, User.name).join(User, User.id == Notification.user_id)
        .where(Notification.id.in_(ids), User.active.is_(true())).order_by(Notification.id)
    ).all()
    sent: list[int] = []
    try:
        with mail.connect(config) as client:
            for notification, email, name in rows:
                client.send_message(mail.compose(
                    email, f"[Asset Inventory] {notification.subject}", "email/notification.txt",
                    sender=config.sender, name=name or email, n=notification,
                    url=mail.absolute(notification.link), kind_label=KINDS.get(notification.kind, ""),
                    settings_url=mail.absolute("/account/notifications")))
                sent.append(notification.id)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("Immediate e-mails stopped after %d of %d: %s", len(sent), len(rows), exc)
        done = set(sent)
        unsent = [n.id for n, _email, _name in rows if n.id not in done]
        session.execute(update(Notification).where(Notification.id.in_(unsent))
                        .values(mail_pending=True).execution_options(synchronize_session=False))
        session.commit()
    return len(sent)


def send_digests(session: Session, *, now: datetime | None = None) -> int:
    """E-mail each person who wants a digest (the default) their unread notifications that
    arrived since their last digest, and remember when (`last_digest_at`); the number of
    digests sent. A person with nothing new gets nothing. Without `SMTP_URL`, nothing is
    sent. Each person's digest is committed as sent on its own, so a failure part-way sends
    nobody twice."""
    config = mail.settings()
    if config is None:
        return 0
    now = now or utcnow()
    pref = NotificationPreference
    rows = session.execute(
        select(Notification, User.email, User.name)
        .join(User, User.id == Notification.user_id)
        .outerjoin(pref, pref.user_id == User.id)
        .where(
            User.active.is_(true()), Notification.read_at.is_(None), Notification.created_at <= now,
            or_(pref.user_id.is_(None),
                and_(pref.email.is_(True), pref.email_mode == EmailMode.digest.value,
                     or_(pref.last_digest_at.is_(None), Notification.created_at > pref.last_digest_at))),
        )
        .order_by(Notification.user_id, Notification.id.desc())
    ).all()
    people: dict[uuid.UUID, tuple[str, str, list[Notification]]] = {}
    for notification, email, name in rows:
        people.setdefault(notification.user_id, (email, name, []))[2].append(notification)
    sent = 0
    if not people:
        return 0
    try:
        with mail.connect(config) as client:
            for user_id, (email, name, items) in people.items():
                shown = items[:DIGEST_ITEMS]
                client.send_message(mail.compose(
                    email, f"[Asset Inventory] {len(items)} new notification{'s' if len(items) != 1 else ''}",
                    "email/digest.txt", sender=config.sender, name=name or email, count=len(items),
                    items=[(n, mail.absolute(n.link)) for n in shown], more=len(items) - len(shown),
                    list_url=mail.absolute("/notifications"),
                    settings_url=mail.absolute("/account/notifications")))
                row = session.get(NotificationPreference, user_id)
                if row is None:
                    row = NotificationPreference(user_id=user_id, **DEFAULTS)
                    session.add(row)
                row.last_digest_at = now
                session.commit()
                sent += 1
    except (smtplib.SMTPException, OSError) as exc:
        session.rollback()
        log.warning("Digests stopped after %d of %d: %s", sent, len(people), exc)
    return sent


def prune(session: Session, *, keep_days: int = KEEP_DAYS, now: datetime | None = None) -> int:
    """Delete notifications read more than `keep_days` ago (unread ones stay, however old).
    Returns how many went. Run by the maintenance task."""
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    pruned = session.execute(delete(Notification).where(Notification.read_at < cutoff)
                             .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return pruned or 0

"""The header search (SPEC §5): from any page, find assets (name, host, alias, id, and the rest
of the /assets search text), import runs (`#N` or a file name), review items (record key or the
candidate's name) and, for admins, users (email or name). A few of each, newest or best first,
in one small query per group.

    found = quick_search.find(session, "orders", users=False)
    found.assets, found.runs, found.conflicts, found.users
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased, defer

from webapp.models import Asset, Conflict, ImportRun, User
from webapp.services import asset_search

PER_GROUP = 5
MIN_LENGTH = 2  # one letter finds everything: wait for a second one (a run number `#5` is fine)
RUN_NUMBER = re.compile(r"#?\s*(\d{1,9})")


@dataclass(frozen=True)
class ConflictHit:
    conflict: Conflict
    candidate_name: str | None


@dataclass
class Found:
    text: str
    searched: bool = False  # False: too short to look for
    assets: list[Asset] = field(default_factory=list)
    more_assets: bool = False
    runs: list[ImportRun] = field(default_factory=list)
    conflicts: list[ConflictHit] = field(default_factory=list)
    users: list[User] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.assets or self.runs or self.conflicts or self.users)


def find(session: Session, text: str, *, users: bool = False, per_group: int = PER_GROUP) -> Found:
    """What `text` finds, by group; `users` only for admins."""
    text = " ".join(text.split())[:200]
    found = Found(text)
    number = RUN_NUMBER.fullmatch(text)
    if len(text) < MIN_LENGTH and not number:
        return found
    found.searched = True
    found.assets, found.more_assets = _assets(session, text, per_group)
    found.runs = _runs(session, text, int(number.group(1)) if number else None, per_group)
    found.conflicts = _conflicts(session, text, per_group)
    if users:
        found.users = _users(session, text, per_group)
    return found


def _assets(session: Session, text: str, limit: int) -> tuple[list[Asset], bool]:
    try:
        asset_id = uuid.UUID(text)
    except ValueError:
        asset_id = None
    if asset_id is not None:  # an id: that asset, even in the trash
        asset = session.scalar(select(Asset).where(Asset.id == asset_id)
                               .options(defer(Asset.search_text)))
        return ([asset] if asset else []), False
    query = asset_search.AssetQuery(q=text, sort="name", limit=limit)
    page = asset_search.list_assets(session, query, with_total=False)
    return page.items, page.next_cursor is not None


def _runs(session: Session, text: str, number: int | None, limit: int) -> list[ImportRun]:
    match = ImportRun.filename.icontains(text, autoescape=True)
    if number is not None:
        match = or_(ImportRun.number == number, match)
    stmt = select(ImportRun).where(match).order_by(ImportRun.number.desc()).limit(limit)
    return list(session.scalars(stmt))


def _conflicts(session: Session, text: str, limit: int) -> list[ConflictHit]:
    candidate = aliased(Asset)
    stmt = (
        select(Conflict, candidate.name)
        .outerjoin(candidate, candidate.id == Conflict.candidate_id)
        .where(or_(Conflict.record_key.icontains(text, autoescape=True),
                   candidate.name.icontains(text, autoescape=True)))
        .order_by(Conflict.status != "open", Conflict.created_at.desc(), Conflict.id.desc())
        .limit(limit)
    )
    return [ConflictHit(c, name) for c, name in session.execute(stmt)]


def _users(session: Session, text: str, limit: int) -> list[User]:
    stmt = (
        select(User)
        .where(or_(User.email.icontains(text, autoescape=True),
                   User.name.icontains(text, autoescape=True)))
        .order_by(User.email)
        .limit(limit)
    )
    return list(session.scalars(stmt))

"""Tags and their colours (SPEC §3 `tags`): every tag with how many live assets carry it, and
setting a tag's colour from a fixed palette (the page's CSS has a class per colour, since the
CSP allows no inline style). Each colour change is audited.

    tags.set_colour(session, actor, "pci", "red")
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.models import Asset, AuditAction, Tag, asset_tags
from webapp.services import audit
from webapp.services.actor import Actor
from webapp.services.errors import NotFound, ValidationFailed

ENTITY = "tag"
# name → the hex kept in tags.colour; the first is every new tag's
PALETTE = {
    "gray": "#6b7280", "red": "#dc2626", "orange": "#ea580c", "amber": "#d97706",
    "green": "#16a34a", "teal": "#0d9488", "blue": "#2563eb", "indigo": "#4f46e5",
    "purple": "#9333ea", "pink": "#db2777",
}
BY_HEX = {hex_: name for name, hex_ in PALETTE.items()}


def colour_name(tag: Tag) -> str:
    """The palette name of a tag's colour (a colour set outside the palette shows as gray)."""
    return BY_HEX.get((tag.colour or "").lower(), "gray")


@dataclass(frozen=True)
class TagRow:
    tag: Tag
    assets: int


def list_tags(session: Session) -> list[TagRow]:
    """Every tag by name, with the number of live assets that carry it (one query)."""
    live = (select(asset_tags.c.tag_id, func.count().label("n"))
            .join(Asset, Asset.id == asset_tags.c.asset_id)
            .where(Asset.deleted_at.is_(None))
            .group_by(asset_tags.c.tag_id).subquery())
    rows = session.execute(select(Tag, func.coalesce(live.c.n, 0))
                           .outerjoin(live, live.c.tag_id == Tag.id).order_by(Tag.name))
    return [TagRow(tag, n) for tag, n in rows]


def set_colour(session: Session, actor: Actor, name: str, colour: str) -> Tag:
    """Give tag `name` a palette colour; audited as an `update` of the tag."""
    tag = session.scalar(select(Tag).where(Tag.name == (name or "").strip().lower()))
    if tag is None:
        raise NotFound("There is no such tag.")
    if colour not in PALETTE:
        raise ValidationFailed({"colour": f"Choose one of: {', '.join(PALETTE)}."})
    before = colour_name(tag)
    if before != colour:
        tag.colour = PALETTE[colour]
        audit.record(session, actor, AuditAction.update, ENTITY, tag.name,
                     {"colour": [before, colour]})
    session.commit()
    return tag

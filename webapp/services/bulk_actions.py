"""What a bulk action is (SPEC §5): the assets it is for (`Selection`), what it does to each
(`BulkAction`, checked against the field catalogue), and what it would do, measured without
writing (`preview`). `services.change_sets` freezes, applies and undoes them.

    selection = Selection.of_filter(asset_search.parse_query(args), args)
    action = BulkAction.parse(set_values={"environment": "staging"}, add_tags=["pci"])
    preview(session, selection, action)   # matched, changes, unchanged, locked, refused, sample
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, false, func, select
from sqlalchemy.orm import Session

from webapp.models import Asset, Tag, asset_fields, asset_tags
from webapp.services import assets, audit, bulk, proposals
from webapp.services.asset_search import AssetQuery, filtered
from webapp.services.asset_validation import ATTRIBUTE, FIELDS, NOT_NULL_DEFAULTS, _tags
from webapp.services.change_set_batches import TAGS_MAX, Verdict, Wanted
from webapp.services.errors import ValidationFailed

IDS_MAX = 10_000  # a selection by ids; more is a filter's job
SAMPLE_SIZE = 10  # assets shown before -> after in a preview
# the fields a bulk action sets (tags are added and removed, not set)
SETTABLE = tuple(f for f in asset_fields.BULK_EDITABLE if f != "tags")


# --- what: the selection ------------------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """The assets a bulk action is for: explicit ids, or every asset a list filter matches."""

    ids: tuple[uuid.UUID, ...] | None = None
    query: AssetQuery | None = None
    filter_args: dict[str, Any] = field(default_factory=dict)  # the filter as given, to show it

    @classmethod
    def of_ids(cls, values: Iterable[Any]) -> Selection:
        """ValidationFailed (field `ids`) for a value that is not an id, none, or too many."""
        ids: dict[uuid.UUID, None] = {}
        for value in values:
            try:
                ids[value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))] = None
            except (ValueError, TypeError, AttributeError):
                raise ValidationFailed({"ids": f"Not an asset id: {str(value)[:60]!r}."}) from None
        if not ids:
            raise ValidationFailed({"ids": "Select at least one asset."}, "Nothing is selected.")
        if len(ids) > IDS_MAX:
            raise ValidationFailed({"ids": f"Select at most {IDS_MAX:,} assets by id; use a filter for more."})
        return cls(ids=tuple(ids))

    @classmethod
    def of_filter(cls, query: AssetQuery, args: Mapping[str, Any]) -> Selection:
        """Every asset `query` (from `asset_search.parse_query`) matches; `args` as given."""
        return cls(query=query, filter_args={k: v for k, v in args.items() if v not in (None, "", [])})

    def statement(self, session: Session) -> Select[tuple[Asset]]:
        if self.ids is not None:
            return select(Asset).where(bulk.among(session, Asset.id, list(self.ids)))
        assert self.query is not None
        return filtered(session, self.query)

    def stored(self) -> dict[str, Any]:
        if self.ids is not None:
            return {"ids": [str(i) for i in self.ids]}
        return {"filter": audit.jsonable(self.filter_args)}

    @property
    def field(self) -> str:
        """The field an error about the selection names."""
        return "ids" if self.ids is not None else "filter"


# --- how: the action ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BulkAction:
    """Set fields, add and remove tags, or move to the trash. `parse` validates against the
    field catalogue (only `bulk_editable` fields, their allowed values and limits)."""

    set: dict[str, Any] = field(default_factory=dict)
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    delete: bool = False

    @classmethod
    def parse(
        cls,
        set_values: Mapping[str, Any] | None = None,
        add_tags: Iterable[str] | None = None,
        remove_tags: Iterable[str] | None = None,
        delete: bool = False,
    ) -> BulkAction:
        errors: dict[str, str] = {}
        cleaned: dict[str, Any] = {}
        for name, value in (set_values or {}).items():
            if name not in SETTABLE:
                errors[str(name)] = ("Not a field a bulk action can set; choose one of: "
                                     f"{', '.join(SETTABLE)}.")
                continue
            try:
                cleaned[name] = FIELDS[name](value)
            except ValueError as exc:
                errors[name] = str(exc)
                continue
            if cleaned[name] is None and name in NOT_NULL_DEFAULTS:
                errors[name] = "Choose a value."
        add = _tag_list(add_tags, "add_tags", errors)
        remove = _tag_list(remove_tags, "remove_tags", errors)
        if set(add) & set(remove):
            errors["remove_tags"] = "A tag cannot be both added and removed."
        if delete and (cleaned or add or remove):
            errors["delete"] = "Moving to the trash cannot be combined with other changes."
        if not errors and not (cleaned or add or remove or delete):
            errors["action"] = "Choose a change to make."
        if errors:
            raise ValidationFailed(errors)
        return cls(cleaned, tuple(add), tuple(remove), bool(delete))

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BulkAction:
        return cls.parse(params.get("set"), params.get("add_tags"), params.get("remove_tags"),
                         bool(params.get("delete")))

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.set:
            params["set"] = {k: audit.jsonable(v) for k, v in self.set.items()}
        if self.add_tags:
            params["add_tags"] = list(self.add_tags)
        if self.remove_tags:
            params["remove_tags"] = list(self.remove_tags)
        if self.delete:
            params["delete"] = True
        return params

    @property
    def fields(self) -> list[str]:
        return [*self.set, *(["tags"] if self.add_tags or self.remove_tags else [])]

    def plan(self, state: dict[str, Any]) -> Wanted | Verdict:
        """What one asset (its current state) becomes."""
        if state["deleted"]:
            return Verdict("refused", "already in the trash" if self.delete else "in the trash")
        if self.delete:
            return Wanted({}, trashed=True)
        values = dict(self.set)
        if self.add_tags or self.remove_tags:
            tags = sorted((set(state["tags"]) | set(self.add_tags)) - set(self.remove_tags))
            if len(tags) > TAGS_MAX:
                return Verdict("failed", f"it would have {len(tags)} tags; an asset has at most {TAGS_MAX}")
            values["tags"] = tags
        return Wanted(values)

    def already(self) -> ColumnElement[bool]:
        """SQL: the asset is already as asked (for the preview's counts)."""
        if self.delete:
            return false()
        conditions: list[ColumnElement[bool]] = []
        for name, value in self.set.items():
            column = getattr(Asset, ATTRIBUTE.get(name, name))
            conditions.append(column.is_(None) if value is None else column == value)
        for tag, present in [*((t, True) for t in self.add_tags), *((t, False) for t in self.remove_tags)]:
            linked = exists().where(asset_tags.c.asset_id == Asset.id, asset_tags.c.tag_id == Tag.id,
                                    Tag.name == tag)
            conditions.append(linked if present else ~linked)
        return and_(*conditions)


def _tag_list(values: Iterable[str] | None, name: str, errors: dict[str, str]) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    try:
        return list(_tags(list(values)))
    except ValueError as exc:
        errors[name] = str(exc)
        return []


def describe(params: Mapping[str, Any]) -> str:
    """The action in words: `Set owner to “dba”; add tag “pci”`."""
    if params.get("undo") is not None:
        if params.get("review") is not None:
            return f"Undo of review resolution (change set #{params['undo']}): reopen dismissed items"
        if params.get("import") is not None:
            return f"Undo of import #{params['import']} (change set #{params['undo']})"
        return f"Undo of change set #{params['undo']}"
    if params.get("import") is not None:
        return f"Import #{params['import']}"
    if params.get("review") is not None:
        count = params.get("items") or 0
        return f"Review queue: {params['review']} {count} item{'s' if count != 1 else ''}"
    if params.get("delete"):
        return "Move to the trash"
    parts = []
    if params.get("set"):
        parts.append("Set " + ", ".join(
            f"{asset_fields.LABELS.get(k, k).lower()} to “{v}”" if v is not None
            else f"{asset_fields.LABELS.get(k, k).lower()} to (not set)"
            for k, v in params["set"].items()))
    for key, verb in (("add_tags", "add"), ("remove_tags", "remove")):
        if params.get(key):
            tags = params[key]
            parts.append(f"{verb} tag{'s' if len(tags) > 1 else ''} " + ", ".join(f"“{t}”" for t in tags))
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]


# --- preview ------------------------------------------------------------------------------------

@dataclass
class Preview:
    """What a bulk action would do, measured now: assets selected, how many would change, are
    already as asked, need approval (`locked`: each becomes a proposed change), are refused
    (in the trash), and a sample of before -> after."""

    matched: int
    changes: int
    unchanged: int
    locked: int
    refused: int
    sample: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def preview(session: Session, selection: Selection, action: BulkAction) -> Preview:
    """Count what `action` would do to `selection` and show a sample. Writes nothing."""
    base = selection.statement(session)
    trashed = Asset.deleted_at.is_not(None)
    already = and_(~trashed, action.already())
    # assets approval covers (SPEC §5, services/proposals): each becomes a proposed change
    held = false() if action.delete else and_(~trashed, ~action.already(),
                                               proposals.covered_condition(session, action.set))
    counts = base.with_only_columns(
        func.count(),
        func.coalesce(func.sum(case((trashed, 1), else_=0)), 0),
        func.coalesce(func.sum(case((already, 1), else_=0)), 0),
        func.coalesce(func.sum(case((held, 1), else_=0)), 0),
        maintain_column_froms=True,
    ).order_by(None)
    matched, refused, unchanged, locked = session.execute(counts).one()
    if selection.ids is not None and matched < len(selection.ids):
        found = set(session.scalars(base.with_only_columns(Asset.id, maintain_column_froms=True)))
        missing = [str(i) for i in selection.ids if i not in found]
        more = f" (and {len(missing) - 1:,} more)" if len(missing) > 1 else ""
        raise ValidationFailed({"ids": f"No such asset: {missing[0]}{more}."})
    if not matched:
        raise ValidationFailed({selection.field: "No assets match this filter."}
                               if selection.ids is None else {"ids": "Select at least one asset."},
                               "Nothing would change: the selection is empty.")
    sample = []
    rows = session.scalars(base.where(~trashed, ~action.already()).order_by(Asset.name, Asset.id)
                           .limit(SAMPLE_SIZE))
    for asset in rows:
        state = {f: assets.field_value(asset, f) for f in action.set}
        state.update(tags=[t.name for t in asset.tags], deleted=asset.deleted_at is not None)
        wanted = action.plan(state)
        if isinstance(wanted, Wanted):
            changes = {f: [audit.jsonable(state[f]), audit.jsonable(v)] for f, v in wanted.values.items()
                       if audit.jsonable(state[f]) != audit.jsonable(v)}
            if wanted.trashed:
                changes["in_trash"] = [False, True]
            sample.append({"asset_id": str(asset.id), "name": asset.name, "changes": changes})
    return Preview(int(matched), int(matched - refused - unchanged - locked), int(unchanged), int(locked),
                   int(refused), sample)

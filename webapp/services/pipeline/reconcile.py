"""Field reconciliation: what a matched record may change on its asset (SPEC §6), and the one
place its rules live.

An absent value never overwrites one; a field last set by a source of higher precedence
keeps its value (the differing one is only an observation, shown on the Sources tab); a field
in `locked_fields` keeps its value too, and a differing value is held back for a person (a
field conflict), as is a value that contradicts another record of the same run about the same
asset. Values equal after normalisation (`observations.equivalent`) never make a conflict. A
derived name (`host:port`) never renames an asset; a different host found by endpoint is
another name of it (an alias); tags, aliases and metadata only grow; a version range (nmap's
`8.x`) only fills an empty version. The fields a run sets are recorded as set by its source
kind, which is what precedence compares later.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from webapp.services import audit, crypto, identifiers, matching, observations
from webapp.services.pipeline.items import Item

ALIASES_MAX = 50
# fields the import never takes from a record onto an existing asset
NOT_RECONCILED = frozenset({"source", "confidence"})
# fields an import only adds to (tags, aliases, metadata keys): nothing to hold back
ADDITIVE = frozenset({"tags", "aliases", "metadata"})
# fields two records of one run may report differently without contradicting each other: the
# additive ones, the secret, and the host (each record may name the server differently)
NO_SAME_RUN_CHECK = ADDITIVE | {"connection_string", "host"}


class Reconciler:
    """Reconciles records of one run (its source `kind`) under the configured precedence."""

    def __init__(self, session: Session, precedence: matching.Precedence, kind: str) -> None:
        self.session = session
        self.precedence = precedence
        self.kind = kind

    def reconcile(
        self, state: dict[str, Any], it: Item, how: str | None,
        earlier: dict[str, tuple[Any, str | None]] | None = None,
    ) -> tuple[dict[str, Any], dict[str, list[Any]], dict[str, str]]:
        """What the record would change on the asset (raw values, before validation), and
        what needs a person: differing values of locked fields, and values that contradict
        what `earlier` records of this run reported about the asset (`{field: (value, record
        key or None)}`), as `{field: [current, incoming]}` with a reason per field."""
        locked = state["_locked"]
        earlier = earlier or {}
        raw: dict[str, Any] = {}
        held: dict[str, list[Any]] = {}
        why: dict[str, str] = {}
        extra_names: list[str] = []
        for name, new in it.fields.items():
            if name in NOT_RECONCILED or new is None:
                continue
            current = state.get(name)
            if name == "name" and it.name_derived:
                continue
            said = earlier.get(name)
            if (said is not None and name not in NO_SAME_RUN_CHECK
                    and not observations.equivalent(name, said[0], new)
                    and not matching.is_version_range(new) and not matching.is_version_range(said[0])):
                # the same source says two things about one database in one run: ask a person
                held[name] = [audit.jsonable(current), audit.jsonable(new)]
                other = f"record {said[1]}" if said[1] else "an earlier record of this import"
                why[name] = (f"{name}: {other} reported {audit.jsonable(said[0])!r}, "
                             f"record {it.record.key} reports {audit.jsonable(new)!r}")
                continue
            if name in ADDITIVE or name == "connection_string":
                if name in locked:
                    continue
            elif name == "engine_version" and matching.is_version_range(new):
                if current is None and name not in locked:
                    raw[name] = new  # better than nothing; an exact version replaces it later
                continue
            elif (current is not None and not same(new, current)
                  and (name != "host" or how == "cloud") and self.outranked(state, name)):
                # (a different host found by endpoint is another name of it: an alias, below)
                if name in locked and not observations.equivalent(name, current, new):
                    held[name] = [audit.jsonable(current), audit.jsonable(new)]
                    why[name] = f"{name} is locked: a person set it"
                # else: a higher-precedence source set it; the value is only an observation
                continue
            if name == "host":
                if current and identifiers.host_form(current) == identifiers.host_form(new):
                    continue
                if current and how != "cloud":
                    extra_names.append(new)  # another name of the same server
                    continue
                raw["host"] = new
            elif name == "aliases":
                extra_names += new
            elif name == "tags":
                merged = sorted(set(current) | {t.lower() for t in new})
                if merged != current:
                    raw["tags"] = merged
            elif name == "metadata":
                merged = {**current, **new}
                if not same(merged, current):
                    raw["metadata"] = merged
            elif name == "connection_string":
                if (crypto.decrypt(self.session, current) if current else None) != new:
                    raw["connection_string"] = new
            elif not same(new, current):
                if name in locked:
                    held[name] = [audit.jsonable(current), audit.jsonable(new)]
                    why[name] = f"{name} is locked: a person set it"
                else:
                    raw[name] = new
        if extra_names and "aliases" not in locked:
            host = identifiers.host_form(raw.get("host") or state["host"] or "")
            have = {identifiers.host_form(a) for a in state["aliases"]} | {host}
            added: list[str] = []
            for alias in extra_names:
                form = identifiers.host_form(alias)
                if form not in have:
                    have.add(form)
                    added.append(alias)
            room = max(0, ALIASES_MAX - len(state["aliases"]))
            if added[:room]:
                raw["aliases"] = [*state["aliases"], *added[:room]]
        return raw, held, why

    def outranked(self, state: dict[str, Any], name: str) -> bool:
        """Whether the field's current value was set by a source this run may not overrule:
        a person (locked fields), or a source of higher precedence for this field."""
        if name in state["_locked"]:
            return True
        current = state["_sources"].get(name) or matching.source_kind(
            state["source"], None, self.precedence.known
        )
        return self.precedence.outranks(name, current, self.kind)

    def apply(self, state: dict[str, Any], cleaned: dict[str, Any]) -> dict[str, list[Any]]:
        diff: dict[str, list[Any]] = {}
        for name, new in cleaned.items():
            if name == "connection_string":
                current = state[name]
                plain = crypto.decrypt(self.session, current) if current else None
                if plain != new:
                    state[name] = crypto.encrypt(self.session, new) if new else None
                    diff[name] = [plain, new]
                continue
            if not same(state.get(name), new):
                diff[name] = [state.get(name), new]
                state[name] = new
                if name in ("host", "aliases"):
                    state.pop("_names", None)
        return diff

    def mark_sources(self, state: dict[str, Any], changed: Any) -> None:
        """The changed fields were set by this run's source."""
        state["_sources"] = {**state["_sources"], **dict.fromkeys(sorted(changed), self.kind)}

    def sources_of_new(self, cleaned: dict[str, Any]) -> dict[str, str]:
        """Who set the fields of an asset the run creates (the additive ones are nobody's)."""
        return {f: self.kind for f in cleaned if f not in ADDITIVE and cleaned[f] is not None}


def same(a: Any, b: Any) -> bool:
    """Equal as stored: `==` first (strings, numbers, enums against their values), then the
    JSON forms (dates, nested values)."""
    return a == b or audit.jsonable(a) == audit.jsonable(b)

"""Honest staleness (SPEC §6): what an import run covered, and the assets it missed.

    coverage.finish_run(session, run, result.coverage)   # when a real run has written its records

A run *misses* an asset when it covered it (nmap: a scan target was one of the asset's host
names or addresses, or a name bridged to one, and the asset's port was in the scan's TCP port
list; cloud: the asset's account, region and resource kind were listed) and none of its records
named it. The first such run after the asset's last sighting sets `assets.missed_since`; the
next sighting clears it (`pipeline.write`). Absence from a run that did not cover the asset
changes nothing, and nothing is deleted.

Cost: the work happens once per finished run, not per page. The assets a run covered are found
through `asset_identifiers` by key prefix (`ep:<host>:`, `cloud:<account prefix>`; an index
with `text_pattern_ops` on PostgreSQL), so a run looks only at assets on the hosts or in the
accounts it covered. `seen=stale` then reads `missed_since` through a partial index
(`asset_search.is_stale`).

Marking is bookkeeping like `last_seen_at` (no version, no per-asset audit event): one audit
event on the run says how many assets it marked, and their policy results are recomputed in the
same transaction.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from webapp.discovery.coverage import Coverage, scope_prefixes
from webapp.models import Asset, AssetIdentifier, AuditAction, HostBridge, ImportRecord, ImportRun
from webapp.models.base import utcnow
from webapp.services import audit, bulk, identifiers, policy_results
from webapp.services.actor import Actor

ASSETS = Asset.__table__
PREFIXES_PER_QUERY = 200
IDS_PER_UPDATE = 5000


def finish_run(session: Session, run: ImportRun, found: Coverage | None,
               now: datetime | None = None) -> int:
    """Store what a real run covered and mark missed the covered assets it did not see, in the
    caller's transaction. Returns how many assets it marked."""
    run.coverage = found.as_json() if found is not None else None
    if found is None or found.covers_nothing:
        return 0
    now = now or utcnow()
    ids = missed_by(session, run, found)
    marked: list[uuid.UUID] = []
    for start in range(0, len(ids), IDS_PER_UPDATE):
        chunk = ids[start : start + IDS_PER_UPDATE]
        marked += session.scalars(
            update(ASSETS)
            .where(bulk.among(session, ASSETS.c.id, chunk), ASSETS.c.missed_since.is_(None))
            .values(missed_since=now, updated_at=ASSETS.c.updated_at)
            .returning(ASSETS.c.id)
        ).all()
    run.missed = len(marked)
    if marked:
        policy_results.touch(session, marked)
        audit.record(session, Actor(user_id=run.uploaded_by, label=run.label, is_manual=False),
                     AuditAction.import_, "import_run", run.id, {"missed": [None, len(marked)]},
                     f"{run.label} covered {len(marked)} asset(s) it did not see: marked missed",
                     change_set_id=run.change_set_id)
    return len(marked)


def missed_by(session: Session, run: ImportRun, found: Coverage) -> list[uuid.UUID]:
    """The live assets, seen before this run started and not missed yet, that `found` covers
    and that none of the run's records named."""
    host_names = _covered_names(session, found)
    prefixes = [f"ep:{name}:" for name in sorted(host_names)]
    prefixes += [p for net in found.networks if (p := _network_prefix(net))]
    prefixes += [f"cloud:{p}" for scope in found.scopes for p in scope_prefixes(scope)]
    started = run.started_at or utcnow()
    networks = _networks(found.networks)
    excluded = _networks(found.excluded)
    missed: dict[uuid.UUID, None] = {}
    for start in range(0, len(prefixes), PREFIXES_PER_QUERY):
        chunk = prefixes[start : start + PREFIXES_PER_QUERY]
        rows = session.execute(
            select(AssetIdentifier.key, ASSETS.c.id, ASSETS.c.cloud_resource_id, ASSETS.c.region)
            .join(ASSETS, ASSETS.c.id == AssetIdentifier.asset_id)
            .where(or_(*(AssetIdentifier.key.like(_escape(p) + "%", escape="\\") for p in chunk)),
                   ASSETS.c.deleted_at.is_(None), ASSETS.c.last_seen_at.is_not(None),
                   ASSETS.c.last_seen_at < started, ASSETS.c.missed_since.is_(None),
                   ~exists().where(ImportRecord.asset_id == ASSETS.c.id, ImportRecord.run_id == run.id))
        ).tuples()
        for key, asset_id, cloud_id, region in rows:
            if asset_id in missed:
                continue
            if key.startswith("cloud:"):
                if found.covers_cloud(cloud_id, region):
                    missed[asset_id] = None
            elif _covers_endpoint(key, found, host_names, networks, excluded):
                missed[asset_id] = None
    return list(missed)


def _covered_names(session: Session, found: Coverage) -> set[str]:
    """The scan's hosts in canonical form, and the DNS names learnt to be one of its addresses."""
    names = {identifiers.host_form(h) for h in found.hosts}
    addresses = sorted(n for n in names if _address(n) is not None)
    for start in range(0, len(addresses), 5000):
        names |= set(session.scalars(select(HostBridge.hostname).where(
            bulk.among(session, HostBridge.address, addresses[start : start + 5000]))))
    return names


def _covers_endpoint(key: str, found: Coverage, host_names: set[str], networks: list[Any],
                     excluded: list[Any]) -> bool:
    """Whether an `ep:<host>:<port>` key is on a scanned host and port (prefixes also bring
    near misses: `ep:10.0.0.5:` finds `ep:10.0.0.5:1:…` of an IPv6 address, `ep:10.0.` a /20's
    neighbours)."""
    host, _, port_text = key[3:].rpartition(":")
    if not port_text.isdigit() or not found.covers_port(int(port_text)):
        return False
    address = _address(host)
    if address is not None and any(address in net for net in excluded):
        return False
    if host in host_names:
        return True
    return address is not None and any(address in net for net in networks)


def _network_prefix(text: str) -> str | None:
    """The key prefix every address of an IPv4 network shares (its whole octets); None for a
    network wider than a /8 or an IPv6 one (only its listed hosts count)."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if net.version != 4 or net.prefixlen < 8:
        return None
    octets = str(net.network_address).split(".")[: net.prefixlen // 8]
    return "ep:" + ".".join(octets) + ("." if len(octets) < 4 else ":")


def _networks(texts: Iterable[str]) -> list[Any]:
    found = []
    for text in texts:
        try:
            found.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue
    return found


def _address(text: str) -> Any:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _escape(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

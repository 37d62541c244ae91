"""One import batch: identify each discovered record, reconcile it, write, audit (SPEC §6).

Identification uses strong identifiers only (the weak-evidence scoring comes with the review
queue):

1. the same `cloud_resource_id`;
2. the same endpoint: a host name or address of the record (host, aliases, IP addresses, and
   the names they are bridged to by FQDN↔IP pairs learnt from nmap and cloud IP lists) with the
   same port, and a compatible engine. Never the host alone: a record without a port only
   matches an asset without a port and with the same database name;
3. the same record seen before: an identical record (same fingerprint) that an earlier real run
   tied to an asset.

A match updates the asset, except that an absent value never overwrites one, a field in
`locked_fields` is left alone, a derived name (`host:port`) never renames an asset, and tags,
aliases and metadata only grow. Anything unmatched is created. The whole batch (assets, tags,
identifiers, bridges, audit events with actor `import #N`, record outcomes and the run's
progress) commits in one transaction, so a killed worker never leaves half a batch.

Assets are read and written with Core statements in bulk, not one ORM object per record: an
import of 100,000 records must finish in seconds (SPEC §11). Validation is the service layer's
(`assets.validate`), so an import accepts exactly what the UI and API accept.

The steps live in their own modules: `items` (what a batch carries, shared constants),
`lookup` (candidates by key and fingerprint, bridges, asset states, a dry run's overlay),
`decide` (identification, pure), `reconcile` (field reconciliation and source precedence: its
one home), `conflicts` (review items), `write` (rows, tags, keys, audit, outcomes) and
`pipeline` (the `Pipeline` driving them).
"""

from webapp.services.pipeline.items import IMPORT_LOCK, ROW_ERRORS_MAX, fingerprint
from webapp.services.pipeline.pipeline import Pipeline
from webapp.services.pipeline.write import touch_seen

__all__ = ["IMPORT_LOCK", "ROW_ERRORS_MAX", "Pipeline", "fingerprint", "touch_seen"]

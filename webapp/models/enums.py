"""Enumerations of the domain model (SPEC §3), stored as strings."""

import enum


class Engine(enum.StrEnum):
    postgresql = "postgresql"
    mysql = "mysql"
    mariadb = "mariadb"
    mssql = "mssql"
    oracle = "oracle"
    mongodb = "mongodb"
    redis = "redis"
    elasticsearch = "elasticsearch"
    cassandra = "cassandra"
    sqlite = "sqlite"
    db2 = "db2"
    dynamodb = "dynamodb"
    other = "other"


class CloudProvider(enum.StrEnum):
    aws = "aws"
    gcp = "gcp"
    azure = "azure"
    on_prem = "on_prem"
    other = "other"


class Environment(enum.StrEnum):
    production = "production"
    staging = "staging"
    development = "development"
    test = "test"
    unknown = "unknown"


class AssetStatus(enum.StrEnum):
    active = "active"
    inactive = "inactive"
    deprecated = "deprecated"
    decommissioned = "decommissioned"
    unknown = "unknown"


class Criticality(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class DataClassification(enum.StrEnum):
    public = "public"
    internal = "internal"
    confidential = "confidential"
    restricted = "restricted"


class Role(enum.StrEnum):
    viewer = "viewer"
    analyst = "analyst"
    reviewer = "reviewer"
    admin = "admin"

    @property
    def rank(self) -> int:
        return ROLE_RANK[self]

    def at_least(self, other: "Role") -> bool:
        return self.rank >= other.rank


ROLE_RANK = {Role.viewer: 0, Role.analyst: 1, Role.reviewer: 2, Role.admin: 3}


class AuditAction(enum.StrEnum):
    create = "create"
    update = "update"
    delete = "delete"
    restore = "restore"
    purge = "purge"
    revert = "revert"
    merge = "merge"
    link = "link"
    unlink = "unlink"
    import_ = "import"
    resolve = "resolve"
    login = "login"
    login_failed = "login_failed"
    logout = "logout"
    token_create = "token_create"
    token_revoke = "token_revoke"
    reveal_secret = "reveal_secret"
    settings_change = "settings_change"
    key_rotate = "key_rotate"
    undo = "undo"  # a change set reversed (SPEC §5): one event per asset it puts back
    export = "export"  # assets left the inventory as a file (SPEC §5): the filter and the count
    exception_grant = "exception_grant"  # a policy exception granted (SPEC §12)
    load = "load"  # a dump loaded into an empty database (`flask load`, SPEC §8)
    repair = "repair"  # derived rows rewritten by `flask validate --repair` (SPEC §8)
    propose = "propose"  # a manual edit saved as a proposal, waiting for approval (SPEC §5)
    approve = "approve"  # a proposal applied by a second person (names both)
    reject = "reject"  # a proposal dropped by a second person, with the reason


class ImportStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (ImportStatus.succeeded, ImportStatus.failed, ImportStatus.cancelled)


class RecordOutcome(enum.StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    flagged = "flagged"
    failed = "failed"
    skipped = "skipped"


class ConflictKind(enum.StrEnum):
    possible_duplicate = "possible_duplicate"
    field_conflict = "field_conflict"


class ConflictStatus(enum.StrEnum):
    open = "open"
    merged = "merged"
    created = "created"
    dismissed = "dismissed"
    # closed without a decision: the disagreement no longer needs a person (it is kept as an
    # observation, SPEC §6); set by `flask conflicts supersede`
    superseded = "superseded"

    @property
    def resolved(self) -> bool:
        return self is not ConflictStatus.open


class RelationshipKind(enum.StrEnum):
    depends_on = "depends_on"
    replicates_to = "replicates_to"
    backs_up_to = "backs_up_to"
    feeds = "feeds"
    member_of = "member_of"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class ChangeSetKind(enum.StrEnum):
    """What made a change set: a bulk action, the undo of another change set, and (later) an
    import run or a `flask load` (SPEC §3, §7)."""

    bulk = "bulk"
    undo = "undo"
    import_ = "import"
    load = "load"
    review = "review"  # review items resolved together from the queue (one action, many items)


class ChangeSetStatus(enum.StrEnum):
    previewed = "previewed"  # selection frozen, shown to the person; nothing written yet
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"

    @property
    def finished(self) -> bool:
        return self in (ChangeSetStatus.succeeded, ChangeSetStatus.failed)


class PolicyStatus(enum.StrEnum):
    """A stored policy result (SPEC §12): what the check said, or `excepted` while an exception
    covers a failure."""

    pass_ = "pass"
    fail = "fail"
    unknown = "unknown"
    excepted = "excepted"

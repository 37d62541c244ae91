"""All models, imported here so Alembic and the app see one metadata."""

from webapp.models.asset import Asset, Tag, asset_tags
from webapp.models.audit import AuditEvent
from webapp.models.base import Base
from webapp.models.change_set import ChangeSet, ChangeSetItem
from webapp.models.conflict import Conflict
from webapp.models.enums import (
    AssetStatus,
    AuditAction,
    ChangeSetKind,
    ChangeSetStatus,
    CloudProvider,
    ConflictKind,
    ConflictStatus,
    Criticality,
    DataClassification,
    Engine,
    Environment,
    ImportStatus,
    PolicyStatus,
    RecordOutcome,
    RelationshipKind,
    Role,
)
from webapp.models.imports import (
    AssetIdentifier,
    HostBridge,
    ImportFile,
    ImportFileChunk,
    ImportRecord,
    ImportRun,
)
from webapp.models.notification import EmailMode, Notification, NotificationPreference
from webapp.models.observation import Observation
from webapp.models.outbox import EventSeverity, OutboxEvent
from webapp.models.policy import PolicyException, PolicyResult, PolicySnapshot
from webapp.models.proposal import Proposal, ProposalStatus
from webapp.models.relationship import AssetRelationship
from webapp.models.setting import Setting
from webapp.models.task import SchedulerLease, TaskRun, TaskStatus
from webapp.models.token import ApiToken
from webapp.models.user import LoginThrottle, User, UserSession
from webapp.models.webhook import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery

__all__ = [
    "ApiToken",
    "Asset",
    "AssetIdentifier",
    "AssetRelationship",
    "AssetStatus",
    "AuditAction",
    "AuditEvent",
    "Base",
    "ChangeSet",
    "ChangeSetItem",
    "ChangeSetKind",
    "ChangeSetStatus",
    "CloudProvider",
    "Conflict",
    "ConflictKind",
    "ConflictStatus",
    "Criticality",
    "DataClassification",
    "DeliveryStatus",
    "EmailMode",
    "Engine",
    "EventSeverity",
    "Environment",
    "HostBridge",
    "ImportFile",
    "ImportFileChunk",
    "ImportRecord",
    "ImportRun",
    "ImportStatus",
    "LoginThrottle",
    "Notification",
    "NotificationPreference",
    "Observation",
    "OutboxEvent",
    "PolicyException",
    "PolicyResult",
    "PolicySnapshot",
    "PolicyStatus",
    "Proposal",
    "ProposalStatus",
    "RecordOutcome",
    "RelationshipKind",
    "Role",
    "SchedulerLease",
    "Setting",
    "Tag",
    "TaskRun",
    "TaskStatus",
    "User",
    "UserSession",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
    "asset_tags",
]

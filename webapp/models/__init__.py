"""All models, imported here so Alembic and the app see one metadata."""

from webapp.models.asset import Asset, Tag, asset_tags
from webapp.models.audit import AuditEvent
from webapp.models.base import Base
from webapp.models.enums import (
    AssetStatus,
    AuditAction,
    CloudProvider,
    Criticality,
    DataClassification,
    Engine,
    Environment,
    Role,
)
from webapp.models.setting import Setting
from webapp.models.token import ApiToken
from webapp.models.user import LoginThrottle, User, UserSession

__all__ = [
    "ApiToken",
    "Asset",
    "AssetStatus",
    "AuditAction",
    "AuditEvent",
    "Base",
    "CloudProvider",
    "Criticality",
    "DataClassification",
    "Engine",
    "Environment",
    "LoginThrottle",
    "Role",
    "Setting",
    "Tag",
    "User",
    "UserSession",
    "asset_tags",
]

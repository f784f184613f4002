"""The models of ``licenses`` (what was sold, SPEC sections 2-5), one module per subject:

- ``organizations``: Organization, Membership, AlertRecipient, Invitation
- ``projects``: Project and its license key
- ``licenses``: License and LicenseItem (every limit of SPEC section 4) with their querysets
- ``domains``: MultiTenantDomain
- ``events``: OutboxEvent, the webhook outbox (SPEC section 14)
- ``tokens``: ApiToken, the admin API's tokens (SPEC section 13)
- ``webhooks``: WebhookEndpoint, where an organization's events go (SPEC section 14)

Every name is re-exported here: import from ``licenses.models``, not from a module of it."""

from __future__ import annotations

# The audit log's model lives with its writer; imported here so Django registers it.
from ..audit import AuditLog, AuditLogQuerySet
from .domains import MultiTenantDomain
from .events import OutboxEvent
from .licenses import (
    OVERUSE_BUDGET_PER_DEVICE,
    License,
    LicenseItem,
    LicenseItemQuerySet,
    LicenseQuerySet,
    effective_overuse_budget_expression,
    effective_overuse_budget_sql,
    in_term_q,
    usable_q,
)
from .organizations import AlertRecipient, Invitation, Membership, Organization
from .projects import Project, new_license_key
from .tokens import LAST_USED_EVERY, READ, SCOPES, TOKEN_PREFIX, WRITE, ApiToken, ApiTokenQuerySet, token_digest
from .webhooks import WebhookEndpoint, new_webhook_secret

__all__ = [
    "LAST_USED_EVERY",
    "OVERUSE_BUDGET_PER_DEVICE",
    "READ",
    "SCOPES",
    "TOKEN_PREFIX",
    "WRITE",
    "AlertRecipient",
    "ApiToken",
    "ApiTokenQuerySet",
    "AuditLog",
    "AuditLogQuerySet",
    "Invitation",
    "License",
    "LicenseItem",
    "LicenseItemQuerySet",
    "LicenseQuerySet",
    "Membership",
    "MultiTenantDomain",
    "Organization",
    "OutboxEvent",
    "Project",
    "WebhookEndpoint",
    "effective_overuse_budget_expression",
    "effective_overuse_budget_sql",
    "in_term_q",
    "new_license_key",
    "new_webhook_secret",
    "token_digest",
    "usable_q",
]

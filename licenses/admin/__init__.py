"""The staff admin: organizations, licenses and their items, projects, users, the audit log.

Staff actions (import, renew, add quota, suspend/resume/revoke) call licenses.issuing; plain
admin saves of these models record an AuditLog row too (``base.AuditedAdmin``)."""

from . import audit_log, issuing, items, organizations  # noqa: F401  (each registers its admins)

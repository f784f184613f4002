"""The licenses app's services, for other apps and entry points: issuing (``licenses.issuing``),
the license file (``licenses.license_file``) and the audit log (``licenses.audit``)."""

from __future__ import annotations

from .audit import record_audit
from .issuing import STATUS_ACTIONS, add_quota, import_license, renew_license, reorder_items, set_license_status
from .keys import rotate_key
from .license_file import LicenseFileError, parse_item, parse_license_file

__all__ = [
    "STATUS_ACTIONS",
    "LicenseFileError",
    "add_quota",
    "import_license",
    "parse_item",
    "parse_license_file",
    "record_audit",
    "renew_license",
    "reorder_items",
    "rotate_key",
    "set_license_status",
]

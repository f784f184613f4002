"""The policy fields a what-if replay may change, by option, how a value is read, and the window
(docs/insight.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from licenses import rules
from licenses.models import License, LicenseItem

MAX_WINDOW = timedelta(days=90)
# A replay takes any value an item may hold: each field's range is the importer's
# (licenses.rules.FIELD_BOUNDS, PAGES_BOUNDS); this is the largest of them, for form fields.
MAX_VALUE = rules.MAX_INT
REPLAYABLE = (
    rules.PER_CLIENT_DEVICE,
    rules.PER_SERVER,
    rules.PER_CONCURRENT_DEVICE,
    rules.PER_BARCODE_SCAN,
    rules.PER_PAGE,
)
# The policy fields a replay may change, by option. A changed dedup_interval_ms deduplicates
# again the raw sightings stored with each report (``usage.sightings_store``).
FIELDS: dict[str, tuple[str, ...]] = {
    rules.PER_CLIENT_DEVICE: ("quantity", "device_grace_percent", "period"),
    rules.PER_SERVER: ("quantity", "heartbeat_timeout_s"),
    rules.PER_CONCURRENT_DEVICE: ("quantity", "overuse_percent", "overuse_budget"),
    rules.PER_BARCODE_SCAN: ("quantity", "quota_grace_percent", "dedup_interval_ms"),
    rules.PER_PAGE: ("quantities", "quota_grace_percent"),
}
_AT_LEAST_ONE = ("quantity", "heartbeat_timeout_s")


class PolicyError(ValueError):
    """A changed policy field that is unknown, not of this option, or out of range."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field, self.reason = field_name, reason


def parse_changes(item: LicenseItem, pairs: list[str] | dict[str, Any]) -> dict[str, Any]:
    """``["quantity=8", "overuse_percent=20"]`` (or a dict) into checked field values."""
    raw: dict[str, Any] = {}
    if isinstance(pairs, dict):
        raw.update(pairs)
    else:
        for pair in pairs:
            name, _, value = pair.partition("=")
            raw[name] = value
    allowed = FIELDS.get(item.option, ())
    out: dict[str, Any] = {}
    for name, value in raw.items():
        name = name.strip()
        if name.startswith("quantities.") and "quantities" in allowed:
            module = name.split(".", 1)[1]
            if module not in (item.quantities or {}):
                raise PolicyError(name, f"this item does not license the page module {module!r}")
            out.setdefault("quantities", dict(item.quantities or {}))[module] = _int(name, value, minimum=1)
            continue
        if name not in allowed:
            what = ", ".join(allowed) or "nothing"
            raise PolicyError(name, f"not a policy field a {item.option} replay can change (it can change {what})")
        if name == "period":
            if value not in rules.PERIOD_SECONDS:
                raise PolicyError(name, f"must be one of {', '.join(rules.PERIOD_SECONDS)}")
            out[name] = value
        elif name == "overuse_budget" and value in ("", "default", "none"):
            out[name] = None
        else:
            out[name] = _int(name, value, minimum=1 if name in _AT_LEAST_ONE else 0)
    return out


def _int(name: str, value: Any, *, minimum: int) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        raise PolicyError(name, f"must be an integer, not {str(value)[:40]!r}") from None
    low, high = rules.PAGES_BOUNDS if name.startswith("quantities.") else rules.FIELD_BOUNDS.get(name, (0, MAX_VALUE))
    if n < max(minimum, low):
        raise PolicyError(name, f"must be at least {max(minimum, low)}")
    if n > high:
        raise PolicyError(name, f"must be at most {high}")
    return n


def check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise PolicyError("to", "must be after from")
    if end - start > MAX_WINDOW:
        raise PolicyError("to", f"a window is at most {MAX_WINDOW.days} days")


def policy_item(item: LicenseItem, changes: dict[str, Any]) -> LicenseItem:
    """An unsaved copy of ``item`` with ``changes``, on an unsaved copy of its license marked
    active (the status at the time is history, not policy: term refusals are kept as recorded)."""
    lic = item.license
    lic_copy = License(**{f.attname: getattr(lic, f.attname) for f in License._meta.concrete_fields})
    lic_copy.status = License.ACTIVE
    copy = LicenseItem(**{f.attname: getattr(item, f.attname) for f in LicenseItem._meta.concrete_fields})
    copy.license = lic_copy
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy

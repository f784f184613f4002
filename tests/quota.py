"""A quota counter's total in tests: the counter row and its shares (``devices.quota``)."""

from __future__ import annotations

from devices import quota


def quota_used(item, metric: str = "barcode_scans") -> int:
    return quota.values(item.pk)[metric]

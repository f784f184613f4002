"""License files for tests: SPEC's example and small valid files (re-exported by tests.factories)."""

from __future__ import annotations

import copy
import itertools

# --- license files and the admin -----------------------------------------------------------

SPEC_EXAMPLE = {
    "license_id": "L-2026-0001",
    "organization": {"id": "216998", "name": "Acme Corp"},
    "starts_at": "2026-11-01T00:00:00Z",
    "expires_at": "2027-11-01T00:00:00Z",
    "project": "acme-web",
    "items": [
        {
            "product": "dbr",
            "edition": "javascript",
            "option": "per_client_device",
            "quantity": 30,
            "period": "yearly",
            "activation_basis": "first_authorization",
            "device_grace_percent": 10,
        },
        {
            "product": "dbr",
            "option": "per_barcode_scan",
            "quantity": 100000,
            "dedup_interval_ms": 3000,
            "quota_grace_percent": 5,
        },
        {"product": "dwt", "option": "per_page", "quantities": {"core": 100000, "ocr": 5000}},
        {"product": "dwt", "addon": "barcode_reader", "option": "per_barcode_scan", "quantity": 5000},
        {
            "product": "dlr",
            "option": "per_concurrent_device",
            "quantity": 10,
            "overuse_percent": 10,
            "overuse_budget": 10000,
        },
        {"product": "dbr", "edition": "server", "option": "per_server", "quantity": 2, "heartbeat_timeout_s": 600},
        {"product": "dwt", "option": "per_domain", "domain": "*.example.com"},
    ],
}


def spec_example() -> dict:
    """A fresh copy of SPEC's example license file."""
    return copy.deepcopy(SPEC_EXAMPLE)


_license_file_seq = itertools.count(1)


def license_file(items: list[dict] | None = None, **top) -> dict:
    """A small valid license file with a fresh license_id; ``top`` overrides top-level fields."""
    doc = {
        "license_id": f"L-T-{next(_license_file_seq):05d}",
        "organization": {"id": "216998", "name": "Acme Corp"},
        "starts_at": "2026-11-01T00:00:00Z",
        "expires_at": "2027-11-01T00:00:00Z",
        "items": items if items is not None else [{"product": "dbr", "option": "per_client_device", "quantity": 5}],
    }
    doc.update(top)
    return doc


def item_for(product: str, option: str, edition: str = "", addon: str = "") -> dict:
    """An item of a license file with the amount field its option needs."""
    item = {"product": product, "option": option}
    if edition:
        item["edition"] = edition
    if addon:
        item["addon"] = addon
    if option == "per_page":
        item["quantities"] = {"core": 1000}
    elif option == "per_domain":
        item["domain"] = "example.com"
    else:
        item["quantity"] = 10
    return item

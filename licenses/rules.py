"""The product catalogue, the applicability table of SPEC section 3 and an item's own rules, in
one place.

Every path that creates an item (import, admin form, services, save) runs ``item_errors``
through ``LicenseItem.validate_rules``; ``check_item_fields`` raises
``django.core.exceptions.ValidationError`` keyed by field with a message that names the rule."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

PRODUCTS = {"dbr": "Barcode Reader SDK", "dwt": "Dynamic Web TWAIN SDK", "dlr": "Label Recognizer SDK"}
EDITIONS = ("javascript", "mobile", "desktop", "server", "embedded")
CLIENT_TYPES = ("web", "mobile", "desktop", "embedded", "server")
PAGE_MODULES = ("core", "webcam", "pdfr", "ocr")
BARCODE_ADDON = "barcode_reader"

PER_BARCODE_SCAN = "per_barcode_scan"
PER_PAGE = "per_page"
PER_CLIENT_DEVICE = "per_client_device"
PER_CONCURRENT_DEVICE = "per_concurrent_device"
PER_SERVER = "per_server"
PER_DOMAIN = "per_domain"
OPTIONS = (PER_BARCODE_SCAN, PER_PAGE, PER_CLIENT_DEVICE, PER_CONCURRENT_DEVICE, PER_SERVER, PER_DOMAIN)

PERIOD_SECONDS = {"yearly": 365 * 86400, "quarterly": 90 * 86400, "monthly": 30 * 86400, "daily": 86400}
ACTIVATION_BASES = ("first_authorization", "first_use")

# Fields an item may carry beyond product/edition/addon/option, by option. A field that does
# not apply to the item's option is refused (SPEC section 5).
OPTION_FIELDS: dict[str, frozenset[str]] = {
    PER_BARCODE_SCAN: frozenset({"quantity", "dedup_interval_ms", "quota_grace_percent"}),
    PER_PAGE: frozenset({"quantities", "quota_grace_percent"}),
    PER_CLIENT_DEVICE: frozenset({"quantity", "period", "activation_basis", "device_grace_percent"}),
    PER_CONCURRENT_DEVICE: frozenset({"quantity", "overuse_percent", "overuse_budget"}),
    PER_SERVER: frozenset({"quantity", "heartbeat_timeout_s"}),
    PER_DOMAIN: frozenset({"domain"}),
}
# Fields that must be present for an option.
OPTION_REQUIRED: dict[str, frozenset[str]] = {
    PER_BARCODE_SCAN: frozenset({"quantity"}),
    PER_PAGE: frozenset({"quantities"}),
    PER_CLIENT_DEVICE: frozenset({"quantity"}),
    PER_CONCURRENT_DEVICE: frozenset({"quantity"}),
    PER_SERVER: frozenset({"quantity"}),
    PER_DOMAIN: frozenset({"domain"}),
}


# The range of each integer field of an item (SPEC section 5: quantities are integers >= 1).
# The license file and the model's validation both read this table, so both say the same words.
MAX_INT = 2_147_483_647  # PositiveIntegerField on PostgreSQL
MAX_PERCENT = 1000
FIELD_BOUNDS: dict[str, tuple[int, int]] = {
    "quantity": (1, MAX_INT),
    "heartbeat_timeout_s": (1, MAX_INT),
    "overuse_budget": (0, MAX_INT),
    "dedup_interval_ms": (0, MAX_INT),
    "device_grace_percent": (0, MAX_PERCENT),
    "quota_grace_percent": (0, MAX_PERCENT),
    "overuse_percent": (0, MAX_PERCENT),
}
PAGES_BOUNDS = (1, MAX_INT)
ADDON_RE = re.compile(r"^[a-z0-9_]{1,64}$")
ADDON_RULE = "must be an add-on name of lower-case letters, digits and '_'"


def range_error(value: int, bounds: tuple[int, int]) -> str | None:
    """The words for an integer out of its field's range, or None."""
    low, high = bounds
    if value < low:
        return f"must be an integer >= {low}"
    if value > high:
        return f"must be an integer <= {high}"
    return None


def applicability_error(product: str, option: str, edition: str = "", addon: str = "") -> str | None:
    """The rule of SPEC section 3 that (product, option, edition, addon) breaks, or None."""
    if product not in PRODUCTS:
        return f"unknown product {product!r}: must be one of {', '.join(PRODUCTS)}"
    if option not in OPTIONS:
        return f"unknown option {option!r}: must be one of {', '.join(OPTIONS)}"
    if edition and edition not in EDITIONS:
        return f"unknown edition {edition!r}: must be one of {', '.join(EDITIONS)}"
    if addon and product != "dwt":
        return f"add-ons exist only for dwt, not {product}"
    if option == PER_BARCODE_SCAN:
        if product == "dlr":
            return "per_barcode_scan applies to dbr, and to dwt only for its Barcode Reader add-on; not to dlr"
        if product == "dwt" and addon != BARCODE_ADDON:
            return "per_barcode_scan applies to dwt only for its Barcode Reader add-on (addon: barcode_reader)"
    elif option == PER_PAGE:
        if product != "dwt":
            return f"per_page applies only to dwt, not {product}"
        if addon == BARCODE_ADDON:
            return "the dwt Barcode Reader add-on is counted per_barcode_scan, not per_page"
    elif option in (PER_CLIENT_DEVICE, PER_CONCURRENT_DEVICE):
        if addon == BARCODE_ADDON:
            return f"the dwt Barcode Reader add-on is counted per_barcode_scan, not {option}"
    elif option == PER_SERVER:
        if product == "dwt":
            return "per_server applies only to dbr and dlr (edition server), not dwt"
        if edition != "server":
            return f"per_server applies to {product} only with edition server"
    elif option == PER_DOMAIN:
        if product == "dlr":
            return "per_domain applies only to dbr (edition javascript) and dwt, not dlr"
        if product == "dbr" and edition != "javascript":
            return "per_domain applies to dbr only with edition javascript"
        if addon == BARCODE_ADDON:
            return "the dwt Barcode Reader add-on is counted per_barcode_scan, not per_domain"
    return None


def check_item_fields(
    product: str, option: str, edition: str = "", addon: str = "", present: set[str] | None = None
) -> None:
    """Raise ValidationError when the item breaks the table or carries a field of another option.

    ``present`` is the set of option-specific field names the caller was given (import files name
    their fields; forms pass the non-empty ones)."""
    rule = applicability_error(product, option, edition, addon)
    if rule:
        field = "product" if product not in PRODUCTS else "option"
        if option in OPTIONS and product in PRODUCTS and edition and edition not in EDITIONS:
            field = "edition"
        raise ValidationError({field: rule})
    if present is not None:
        allowed = OPTION_FIELDS[option]
        stray = sorted(present - allowed - {"product", "option", "edition", "addon"})
        if stray:
            raise ValidationError({stray[0]: f"{stray[0]} does not apply to option {option}"})
        missing = sorted(OPTION_REQUIRED[option] - present)
        if missing:
            raise ValidationError({missing[0]: f"{missing[0]} is required for option {option}"})


def item_errors(item, present: set[str]) -> dict[str, list[str]]:
    """Every rule an item (a ``LicenseItem``, saved or not) breaks, by field, in the words the
    admin and the import show: the table above, fields of another option (``present``: the
    option fields the caller was given), integer ranges, page modules, the licensed domain.
    ``LicenseItem.validate_rules`` is the entry point; nothing needs the database."""
    from .domains import item_domain_error

    errors: dict[str, list[str]] = {}
    try:
        check_item_fields(item.product, item.option, item.edition, item.addon, present=present)
    except ValidationError as e:
        errors.update(e.message_dict)
    if item.addon and not ADDON_RE.match(item.addon):
        errors.setdefault("addon", []).append(ADDON_RULE)
    for name, bounds in FIELD_BOUNDS.items():
        value = getattr(item, name)
        problem = None if value is None else range_error(value, bounds)
        if problem:
            errors.setdefault(name, []).append(problem)
    if item.option == PER_PAGE and item.quantities is not None:
        if not isinstance(item.quantities, dict) or not item.quantities:
            errors.setdefault("quantities", []).append("quantities must map page modules to page counts")
        else:
            for module, n in item.quantities.items():
                if module not in PAGE_MODULES:
                    errors.setdefault("quantities", []).append(
                        f"unknown page module {module!r}: must be one of {', '.join(PAGE_MODULES)}"
                    )
                elif not isinstance(n, int) or isinstance(n, bool) or range_error(n, PAGES_BOUNDS):
                    errors.setdefault("quantities", []).append(f"quantities.{module} must be an integer >= 1")
    if item.option == PER_DOMAIN and item.domain:
        problem = item_domain_error(item.domain)
        if problem:
            errors.setdefault("domain", []).append(problem)
    return errors

"""The CSV exports of SPEC section 9 (contract), shared by ``export_usage`` and the portal.

``usage`` and ``concurrency`` read the rollups, ``devices`` reads live data filtered by
``last_seen_at``. ``start`` is inclusive, ``end`` exclusive; times are written
``YYYY-MM-DDTHH:MM:SSZ``; the item column is the item id string. Rows stream from the database
in chunks, so a large export runs in bounded memory."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import TextIO

from devices.models import Device
from licenses.clock import rfc3339, within_range
from licenses.models import Project
from usage.models import METRICS, ConcurrencyRollup, UsageRollup

WHATS = ("usage", "concurrency", "devices")
HEADERS = {
    "usage": ["bucket_start", "item", "metric", "count"],
    "concurrency": ["slot_start", "item", "active_devices", "limit", "overuse_devices"],
    "devices": [
        "device_uuid",
        "item",
        "client_type",
        "origin",
        "device_name",
        "first_authorized_at",
        "last_seen_at",
        "active_until",
        "state",
    ],
}
CHUNK = 2000


def format_time(dt: datetime | None) -> str:
    return rfc3339(dt) if dt else ""


def parse_bound(value: str) -> datetime:
    """A date (midnight UTC) or an RFC 3339 date-time (a time without offset is taken as UTC)."""
    text = value.strip()
    try:
        if len(text) == 10:
            return within_range(datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC))
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is not None:  # bounded before the shift to UTC, which could overflow
            within_range(parsed.replace(tzinfo=UTC))
        return within_range((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC))
    except OverflowError:
        raise ValueError(f"{value!r} must be between 1970-01-01 and 8999-12-31 (UTC)") from None
    except ValueError as e:
        if "must be between" in str(e):
            raise
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or a date-time (YYYY-MM-DDTHH:MM:SSZ)") from e


def _between(qs, field: str, start: datetime | None, end: datetime | None):
    if start is not None:
        qs = qs.filter(**{f"{field}__gte": start})
    if end is not None:
        qs = qs.filter(**{f"{field}__lt": end})
    return qs


def export_rows(
    *, project: Project, what: str, start: datetime | None = None, end: datetime | None = None
) -> Iterator[list[str]]:
    """The rows of one export, header first, as lists of strings."""
    if what not in HEADERS:
        raise ValueError(f"what must be one of {', '.join(WHATS)}, not {what!r}")
    yield list(HEADERS[what])
    if what == "usage":
        qs = _between(
            UsageRollup.objects.filter(item__project=project, granularity=UsageRollup.TWO_HOURS, metric__in=METRICS),
            "bucket_start",
            start,
            end,
        ).order_by("bucket_start", "item_id", "metric")
        for bucket_start, item_id, metric, count in qs.values_list(
            "bucket_start", "item_id", "metric", "count"
        ).iterator(chunk_size=CHUNK):
            yield [format_time(bucket_start), str(item_id), metric, str(count)]
    elif what == "concurrency":
        qs = _between(ConcurrencyRollup.objects.filter(item__project=project), "slot_start", start, end).order_by(
            "slot_start", "item_id"
        )
        rows = qs.values_list("slot_start", "item_id", "active_devices", "limit", "overuse_devices")
        for slot_start, item_id, active, limit, overuse in rows.iterator(chunk_size=CHUNK):
            yield [format_time(slot_start), str(item_id), str(active), str(limit), str(overuse)]
    else:
        qs = _between(Device.objects.filter(project=project), "last_seen_at", start, end).order_by("last_seen_at", "id")
        rows = qs.values_list(
            "device_uuid",
            "item_id",
            "client_type",
            "origin",
            "device_name",
            "first_authorized_at",
            "last_seen_at",
            "active_until",
            "state",
        )
        for uuid, item_id, client_type, origin, name, first, last, until, state in rows.iterator(chunk_size=CHUNK):
            yield [
                uuid,
                "" if item_id is None else str(item_id),
                client_type,
                origin,
                name,
                format_time(first),
                format_time(last),
                format_time(until),
                state,
            ]


class _Line:
    """A file-like target for ``csv.writer`` that hands back what one row wrote."""

    def write(self, text: str) -> str:
        return text


def stream_csv(
    *, project: Project, what: str, start: datetime | None = None, end: datetime | None = None, rows: int = 500
) -> Iterator[bytes]:
    """The export as UTF-8 chunks of ``rows`` rows, for a ``StreamingHttpResponse``: the rows come
    from server-side cursors (``iterator(chunk_size=...)``), so memory stays flat whatever the
    number of devices. The same bytes as ``write_csv``."""
    writer = csv.writer(_Line(), lineterminator="\n")
    batch: list[str] = []
    for row in export_rows(project=project, what=what, start=start, end=end):
        batch.append(writer.writerow([safe_cell(cell) for cell in row]))
        if len(batch) >= rows:
            yield "".join(batch).encode("utf-8")
            batch = []
    if batch:
        yield "".join(batch).encode("utf-8")


def write_csv(
    *, project: Project, what: str, start: datetime | None = None, end: datetime | None = None, out: TextIO
) -> None:
    """Write the export as CSV (UTF-8 text, no BOM, ``\\n`` line ends, minimal quoting) to ``out``:
    a text stream such as ``sys.stdout`` or an ``HttpResponse``."""
    writer = csv.writer(out, lineterminator="\n")
    for row in export_rows(project=project, what=what, start=start, end=end):
        writer.writerow([safe_cell(cell) for cell in row])


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def safe_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP "CSV Injection"): text starting with
    ``=``, ``+``, ``-``, ``@``, tab or CR gets a leading ``'``, which spreadsheets hide and scripts
    can strip; plain numbers are left as they are. Headers (SPEC section 9) never start so."""
    if value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value

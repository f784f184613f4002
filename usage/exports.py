"""The CSV exports of SPEC section 9 (contract), shared by ``export_usage`` and the portal.

``usage`` and ``concurrency`` read the rollups, ``devices`` reads live data filtered by
``last_seen_at``. ``start`` is inclusive, ``end`` exclusive; times are written
``YYYY-MM-DDTHH:MM:SSZ``; the item column is the item id string. Rows stream from the database
in chunks, so a large export runs in bounded memory: on PostgreSQL ``COPY (SELECT ...) TO STDOUT
(FORMAT csv)`` writes the file (the times and formula guard in SQL beside their Python twins, the
quoting COPY's own) and Python passes its bytes on; elsewhere Python formats the rows
(``csv_line`` quotes as COPY does). The bytes are the same."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import TextIO

from django.db import connection

from devices.models import Device
from licenses.clock import rfc3339, rfc3339_sql, within_range
from licenses.models import LicenseItem, Project
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
COPY_CHUNK = 256 * 1024  # bytes per chunk of a PostgreSQL export (COPY sends a message per row)


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


_QUOTED = re.compile(r'[",\r\n]')


def csv_line(cells: list[str]) -> str:
    """One CSV line (``\\n`` ended) with the quoting of PostgreSQL's ``COPY ... (FORMAT csv)``: a
    cell holding a comma, a quote, CR or LF is quoted, its quotes doubled; nothing else is."""
    safe = (safe_cell(c) for c in cells)
    return ",".join('"' + c.replace('"', '""') + '"' if _QUOTED.search(c) else c for c in safe) + "\n"


def stream_csv(
    *, project: Project, what: str, start: datetime | None = None, end: datetime | None = None, rows: int = 500
) -> Iterator[bytes]:
    """The export as UTF-8 chunks, for a ``StreamingHttpResponse`` and ``write_csv``: memory stays
    flat and the first bytes leave at once whatever the number of devices. On PostgreSQL
    ``COPY (_copy_select) TO STDOUT (FORMAT csv)`` writes the lines, passed on COPY_CHUNK bytes
    at a time; elsewhere rows come from server-side cursors, ``rows`` per chunk."""
    if what not in HEADERS:
        raise ValueError(f"what must be one of {', '.join(WHATS)}, not {what!r}")
    if connection.vendor == "postgresql":
        yield csv_line(HEADERS[what]).encode("utf-8")
        yield from _copy(*_copy_select(project=project, what=what, start=start, end=end))
        return
    batch: list[str] = []
    for row in export_rows(project=project, what=what, start=start, end=end):
        batch.append(csv_line(row))
        if len(batch) >= rows:
            yield "".join(batch).encode("utf-8")
            batch = []
    if batch:
        yield "".join(batch).encode("utf-8")


def write_csv(
    *, project: Project, what: str, start: datetime | None = None, end: datetime | None = None, out: TextIO
) -> None:
    """Write the export as CSV (UTF-8 text, no BOM, ``\\n`` line ends, minimal quoting) to ``out``:
    a text stream such as ``sys.stdout`` or an ``HttpResponse``. The bytes of ``stream_csv``."""
    for chunk in stream_csv(project=project, what=what, start=start, end=end):
        out.write(chunk.decode("utf-8"))


def safe_cell_sql(col: str) -> str:
    """``safe_cell`` in PostgreSQL. The first character is compared by its code (``ascii``: the
    code point in UTF-8, 0 for an empty text), a third of the cost of ``left(col, 1) IN``."""
    starts = ", ".join(str(ord(c)) for c in FORMULA_START)
    quote = "''''"  # a literal ' in SQL
    number = f"'^{_NUMBER.pattern}$'"
    return f"CASE WHEN ascii({col}) IN ({starts}) AND {col} !~ {number} THEN {quote} || {col} ELSE {col} END"


def _copy_select(*, project: Project, what: str, start: datetime | None, end: datetime | None) -> tuple[str, list]:
    """A SELECT of the export's cells (``export_rows``: the same columns, filters and order) as
    texts, which ``COPY ... (FORMAT csv)`` writes as ``csv_line`` does: it quotes a cell holding
    a comma, a quote, CR or LF, and writes NULL as an empty cell, so an empty text is made NULL
    (COPY would write it ``""``)."""
    items = LicenseItem._meta.db_table
    params: list[object] = [project.pk]

    def text(col: str) -> str:
        return f"NULLIF({col}, '')"

    def time(col: str) -> str:
        return rfc3339_sql(col)

    if what == "usage":
        at = "r.bucket_start"
        metrics = ", ".join(f"'{m}'" for m in METRICS)  # the SPEC's fixed names: nothing to guard or quote
        head = (
            f"SELECT {time(at)}, r.item_id, {text('r.metric')}, r.count "
            f"FROM {UsageRollup._meta.db_table} r JOIN {items} i ON i.id = r.item_id WHERE i.project_id = %s "
            f"AND r.granularity = '{UsageRollup.TWO_HOURS}' AND r.metric IN ({metrics})"
        )
        order = "r.bucket_start, r.item_id, r.metric"
    elif what == "concurrency":
        at = "r.slot_start"
        head = (
            f'SELECT {time(at)}, r.item_id, r.active_devices, r."limit", r.overuse_devices '
            f"FROM {ConcurrencyRollup._meta.db_table} r JOIN {items} i ON i.id = r.item_id WHERE i.project_id = %s"
        )
        order = "r.slot_start, r.item_id"
    else:
        at = "d.last_seen_at"
        # The free texts get the formula guard; client_type and state are the SPEC's names (the
        # API's choices, a check constraint), which need none.
        uuid, origin, name = (text(safe_cell_sql(f"d.{c}")) for c in ("device_uuid", "origin", "device_name"))
        times = ", ".join(time(f"d.{c}") for c in ("first_authorized_at", "last_seen_at", "active_until"))
        head = (
            f"SELECT {uuid}, d.item_id, {text('d.client_type')}, {origin}, {name}, {times}, {text('d.state')} "
            f"FROM {Device._meta.db_table} d WHERE d.project_id = %s"
        )
        order = "d.last_seen_at, d.id"
    if start is not None:
        head += f" AND {at} >= %s"
        params.append(start)
    if end is not None:
        head += f" AND {at} < %s"
        params.append(end)
    return f"{head} ORDER BY {order}", params


def _copy(select: str, params: list) -> Iterator[bytes]:
    """``COPY (select) TO STDOUT (FORMAT csv)`` as chunks of about COPY_CHUNK bytes (UTF-8, the
    connection's encoding). A consumer that stops early (a download cancelled) closes this
    generator: psycopg then cancels the COPY and drains it, leaving the connection usable."""
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            chunk = bytearray()
            for data in copy:
                chunk += data
                if len(chunk) >= COPY_CHUNK:
                    yield bytes(chunk)
                    chunk.clear()
            if chunk:
                yield bytes(chunk)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def safe_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP "CSV Injection"): text starting with
    ``=``, ``+``, ``-``, ``@``, tab or CR gets a leading ``'``, which spreadsheets hide and scripts
    can strip; plain numbers are left as they are. Headers (SPEC section 9) never start so."""
    if value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value

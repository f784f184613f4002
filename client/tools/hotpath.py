"""The device API's hot paths measured in-process (``bench_api``, docs/benchmarks.md): SQL
statements per request, web CPU per request (this process: views, ORM, psycopg, signing), the
database backend's CPU per request (its /proc entry: the server shares the machine), and the
sequential rate, for new devices on a seat item at 0 and at 40,000 seats taken, re-authorizing
devices, and usage reports into one scan item. Requests go through the whole Django stack
(middleware included) with ``django.test.Client``; the load figures come from gunicorn."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

from django.db import connection
from django.test import Client, override_settings

from licenses.clock import rfc3339, slot_start_of


def _backend_cpu_s() -> float | None:
    """User + system CPU of this connection's PostgreSQL backend, seconds (None if unreadable)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    import os

    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def _measure(label: str, bodies: list[tuple[str, dict]]) -> dict:
    client = Client()
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            statements += 1
        return execute(sql, params, many, context)

    statuses: dict[int, int] = {}
    with override_settings(ALLOWED_HOSTS=["*"], API_RATE_LIMIT="0", API_RATE_LIMIT_ADDRESS="0"):
        db0, cpu0, t0 = _backend_cpu_s(), time.process_time(), time.perf_counter()
        with connection.execute_wrapper(count):
            for path, body in bodies:
                response = client.post(f"/api/v1/{path}", data=json.dumps(body), content_type="application/json")
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        wall, cpu, db1 = time.perf_counter() - t0, time.process_time() - cpu0, _backend_cpu_s()
    n = len(bodies)
    return {
        "what": label,
        "requests": n,
        "statuses": statuses,
        "statements": statements / n,
        "web_cpu_ms": cpu * 1000 / n,
        "db_cpu_ms": (db1 - db0) * 1000 / n if db0 is not None and db1 is not None else None,
        "rate": n / wall,
    }


def fill_seats(item, n: int, now) -> None:
    """``n`` devices holding seats of ``item`` (SQL), and its seat counter recounted."""
    from devices.models import Device
    from devices.seats import recount

    named = ("project_id", "device_uuid", "item_id", "client_type", "state", "first_authorized_at", "authorized_at",
             "last_seen_at", "active_until")  # fmt: skip
    # Every other NOT NULL column with a plain default gets it (fields added later included).
    others = [
        f
        for f in Device._meta.concrete_fields
        if f.column not in named and not f.primary_key and not f.null and f.has_default() and not callable(f.default)
    ]
    columns = ", ".join([*named, *(f.column for f in others)])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Device._meta.db_table} ({columns})
            SELECT %s, 'seat-' || g, %s, 'desktop', 'active', %s, %s, %s, %s{", %s" * len(others)}
            FROM generate_series(1, %s) g""",
            [item.project_id, item.pk, now, now, now, now + timedelta(days=300), *(f.default for f in others), n],
        )
        cursor.execute(f"ANALYZE {Device._meta.db_table}")
    recount(fix=True)


def measure(
    *, seats_empty, seats_full, scans, now, n: int = 400, seats_protected=None, session_password: str = ""
) -> list[dict]:
    """The rows of the in-process table: items each alone in its project (``seats_full``
    already holding 40,000 seats, ``scans`` a scan item, ``seats_protected`` a project with a
    session password, SPEC 6, whose check must not show beside ``seats_empty``)."""

    def auth(item, uuid):
        return ("authorize", {"license_key": item.project.license_key, "device_uuid": uuid, "product": "dbr",
                              "client_type": "desktop"})  # fmt: skip

    rows = [
        _measure("authorize, a new device, 0 seats taken", [auth(seats_empty, f"new0-{i}") for i in range(n)]),
        _measure("authorize, a new device, 40,000 seats taken", [auth(seats_full, f"new40k-{i}") for i in range(n)]),
        _measure("authorize again, a device holding its seat", [auth(seats_empty, f"new0-{i}") for i in range(n)]),
    ]
    if seats_protected is not None:
        protected = [auth(seats_protected, f"pw-{i}") for i in range(n)]
        for _, body in protected:
            body["session_password"] = session_password
        rows.insert(1, _measure("authorize, a new device, 0 seats taken, with a session password", protected))
    with override_settings(ALLOWED_HOSTS=["*"], API_RATE_LIMIT="0", API_RATE_LIMIT_ADDRESS="0"):
        for i in range(n):  # the scan devices, authorized beforehand (not measured)
            path, body = auth(scans, f"scan-{i}")
            Client().post(f"/api/v1/{path}", data=json.dumps(body), content_type="application/json")
    slot = rfc3339(slot_start_of(now))
    reports = [
        (
            "usage",
            {
                "license_key": scans.project.license_key,
                "device_uuid": f"scan-{i}",
                "report_id": f"r-{i}",
                "slot_start": slot,
                "barcode_scans": 3,
            },
        )  # fmt: skip
        for i in range(n)
    ]
    rows.append(_measure("usage, a report into one scan item", reports))
    return rows

"""The device API's hot paths measured in-process (``bench_api``, docs/benchmarks.md): SQL
statements per request, web CPU per request (this process: views, ORM, psycopg, signing), the
database backend's CPU per request (its /proc entry: the server shares the machine), and the
sequential rate, for new devices on a seat item at 0 and at 40,000 seats taken, re-authorizing
devices, usage reports into one scan item, and the floor (``hotpath_urls``: a ninja POST of the
usage schema that does nothing). Requests go through Django's WSGI handler as gunicorn calls
it (middleware, request signals and the per-request connection handling included) with the
production settings that matter here (``DEBUG`` off); the load figures come from gunicorn.
``profile`` says where a request's CPU goes."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta
from pathlib import Path

from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test import override_settings

from licenses.clock import rfc3339, slot_start_of

# The rows the benchmark's report reads by name (client.tools.bench.report).
NEW_DEVICE_ROW = "authorize, a new device, 0 seats taken"
USAGE_ROW = "usage, a report into one scan item"
SIGHTINGS_ROW = "usage, a report with 2 barcode sightings into one scan item"
NOTHING_ROW = "floor: a ninja POST of the usage schema that does nothing"


def _backend_pid() -> int | None:
    if connection.vendor != "postgresql" or connection.connection is None:
        return None
    return connection.connection.info.backend_pid


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


def _environ(path: str, body: bytes) -> dict:
    """What gunicorn hands the WSGI application for a JSON POST (no cookies, keep-alive)."""
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "hotpath",
        "HTTP_CONNECTION": "keep-alive",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _post(handler, path: str, body: dict) -> int:
    """One request through the WSGI handler as gunicorn calls it (middleware, request signals,
    the database's per-request connection handling included); its status."""
    status: list[str] = []
    data = json.dumps(body).encode()
    response = handler(_environ(path, data), lambda s, headers, exc_info=None: status.append(s))
    try:
        for _ in response:
            pass
    finally:
        response.close()  # request_finished: what gunicorn does after sending the answer
    return int(status[0].split()[0])


# Production settings where the in-process run would otherwise take the development ones
# (DEBUG keeps every query in memory); rate limits off (the load test measures them).
_SETTINGS = {"ALLOWED_HOSTS": ["*"], "API_RATE_LIMIT": "0", "API_RATE_LIMIT_ADDRESS": "0", "DEBUG": False}


def _measure(label: str, bodies: list[tuple[str, dict]], *, prefix: str = "/api/v1/") -> dict:
    handler = WSGIHandler()
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            statements += 1
        return execute(sql, params, many, context)

    statuses: dict[int, int] = {}
    with override_settings(**_SETTINGS):
        # A fresh connection, so that CONN_MAX_AGE does not replace it (and its backend) mid-row
        # (not inside a transaction, a test's: that connection must stay).
        if not connection.in_atomic_block:
            connection.close()
        _post(handler, f"{prefix}{bodies[0][0]}", {})  # URLs and views loaded before the clocks start (a 400)
        db0 = _backend_cpu_s()  # (opens the connection)
        pid, cpu0, t0 = _backend_pid(), time.process_time(), time.perf_counter()
        with connection.execute_wrapper(count):
            for path, body in bodies:
                status = _post(handler, f"{prefix}{path}", body)
                statuses[status] = statuses.get(status, 0) + 1
        wall, cpu, db1 = time.perf_counter() - t0, time.process_time() - cpu0, _backend_cpu_s()
        if _backend_pid() != pid:  # reconnected after all: the backend's CPU is unknown
            db0 = db1 = None
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


# Where a request's CPU goes, by the file a function lives in (own time, cProfile).
_PARTS = (
    ("signing (joserfc, cryptography)", ("joserfc/", "cryptography/")),
    ("psycopg", ("psycopg/", "psycopg_binary/")),
    ("ORM (django.db)", ("django/db/",)),
    ("validation (ninja, pydantic)", ("ninja/", "pydantic")),
    (
        "middleware (Django's, csp, axes, whitenoise)",
        ("django/middleware/", "django/contrib/", "csp/", "axes/", "whitenoise/"),
    ),  # fmt: skip
    ("request and response (django.http, handlers, urls)", ("django/",)),
    ("JSON", ("json/",)),
    (
        "this project (api, usage, devices, licenses, dls_admin)",
        ("/api/", "/usage/", "/devices/", "/licenses/", "/dls_admin/"),
    ),  # fmt: skip
)


def _part(filename: str) -> str:
    for name, needles in _PARTS:
        if any(n in filename for n in needles):
            return name
    return "other (Python, logging, ...)"


def profile(bodies: list[tuple[str, dict]], *, top: int = 10) -> dict:
    """cProfile (CPU clock) of the requests: own time per request by part (``_PARTS``) and the
    ``top`` functions by own time, in ms per request."""
    import cProfile
    import pstats

    handler = WSGIHandler()
    profiler = cProfile.Profile(time.process_time)
    with override_settings(**_SETTINGS):
        _post(handler, f"/api/v1/{bodies[0][0]}", {})
        profiler.enable()
        for path, body in bodies:
            _post(handler, f"/api/v1/{path}", body)
        profiler.disable()
    n = len(bodies)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    parts: dict[str, float] = {}
    functions = []
    for (filename, line, name), (_, _, own, _, _) in stats.items():
        part = _part(filename)
        parts[part] = parts.get(part, 0.0) + own * 1000 / n
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        functions.append((own * 1000 / n, f"{short}:{line}({name})"))
    functions.sort(reverse=True)
    return {
        "parts": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
        "top": functions[:top],
        "total_ms": sum(parts.values()),
    }


def fill_seats(item, n: int, now) -> None:
    """``n`` devices holding seats of ``item`` (SQL), and its seat counter recounted."""
    from devices.models import Device
    from devices.seats import ensure_counter, recount

    named = ("project_id", "device_uuid", "item_id", "client_type", "state", "first_authorized_at", "authorized_at",
             "last_seen_at", "active_until")  # fmt: skip
    # Every other NOT NULL column with a plain default gets it (fields added later included).
    others = [
        f
        for f in Device._meta.concrete_fields
        if f.column not in named and not f.primary_key and not f.null and f.has_default() and not callable(f.default)
    ]
    columns = ", ".join([*named, *(str(f.column) for f in others)])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Device._meta.db_table} ({columns})
            SELECT %s, 'seat-' || g, %s, 'desktop', 'active', %s, %s, %s, %s{", %s" * len(others)}
            FROM generate_series(1, %s) g""",
            [item.project_id, item.pk, now, now, now, now + timedelta(days=300), *(f.default for f in others), n],
        )
        cursor.execute(f"ANALYZE {Device._meta.db_table}")
    ensure_counter(item)
    recount(fix=True)


def measure(
    *,
    seats_empty,
    seats_full,
    scans,
    now,
    n: int = 400,
    seats_protected=None,
    session_password: str = "",
    seats_at_ceiling=None,
) -> list[dict]:
    """The rows of the in-process table: items each alone in its project (``seats_full``
    already holding 40,000 seats, ``scans`` a scan item, ``seats_protected`` a project with a
    session password, SPEC 6, whose check must not show beside ``seats_empty``,
    ``seats_at_ceiling`` an item whose every seat is taken: each new device is refused)."""

    def auth(item, uuid):
        return ("authorize", {"license_key": item.project.license_key, "device_uuid": uuid, "product": "dbr",
                              "client_type": "desktop"})  # fmt: skip

    # An item's first seat creates its counter from its live devices and grants its shares
    # (devices.seats, once per item, the exact way): done here, so that the rows measure every
    # later request.
    with override_settings(**_SETTINGS):
        handler = WSGIHandler()
        for item in (seats_empty, seats_full, seats_protected):
            if item is not None:
                path, body = auth(item, f"warm-{item.pk}")
                if item is seats_protected:
                    body["session_password"] = session_password
                _post(handler, f"/api/v1/{path}", body)

    rows = [
        _measure(NEW_DEVICE_ROW, [auth(seats_empty, f"new0-{i}") for i in range(n)]),
        _measure("authorize, a new device, 40,000 seats taken", [auth(seats_full, f"new40k-{i}") for i in range(n)]),
        _measure("authorize again, a device holding its seat", [auth(seats_empty, f"new0-{i}") for i in range(n)]),
    ]
    if seats_protected is not None:
        protected = [auth(seats_protected, f"pw-{i}") for i in range(n)]
        for _, body in protected:
            body["session_password"] = session_password
        rows.insert(1, _measure("authorize, a new device, 0 seats taken, with a session password", protected))
    if seats_at_ceiling is not None:
        # Not an "authorize" row (the statements of an authorization are a grant's): the
        # exact way every new device of a full item takes (devices.seats), and its decision.
        taken = f"{seats_at_ceiling.seat_ceiling:,}"
        refused = [auth(seats_at_ceiling, f"over-{i}") for i in range(n)]
        rows.append(_measure(f"refusal: a new device, all {taken} seats of its item taken", refused))
    with override_settings(**_SETTINGS):
        handler = WSGIHandler()
        for i in range(n):  # the scan devices, authorized beforehand (not measured)
            path, body = auth(scans, f"scan-{i}")
            _post(handler, f"/api/v1/{path}", body)
        # The item's first report makes its counter's shares (devices.quota, the exact way, once).
        for path, body in usage_reports(scans, now, 1, run="warm"):
            _post(handler, f"/api/v1/{path}", body)
    reports = usage_reports(scans, now, n, run="r")
    rows.append(_measure(USAGE_ROW, reports))
    # As the load generator's reports (client.tools.loadgen): two sightings each, deduplicated
    # against the device's memory (usage.dedup).
    seen = usage_reports(scans, now, n, run="s", sightings=2)
    rows.append(_measure(SIGHTINGS_ROW, seen))
    with override_settings(ROOT_URLCONF="client.tools.hotpath_urls"):
        floor = [("usage", dict(body, report_id=f"f-{i}")) for i, (_, body) in enumerate(reports)]
        rows.append(_measure(NOTHING_ROW, floor, prefix="/api/v1/floor/"))
    return rows


def usage_reports(scans, now, n: int, *, run: str = "p", sightings: int = 0) -> list[tuple[str, dict]]:
    """``n`` usage reports of the devices ``scan-<i>`` that ``measure`` authorized on ``scans``
    (with ``sightings`` barcodes each, every one new)."""
    slot = rfc3339(slot_start_of(now))
    key = scans.project.license_key
    ts = int(now.timestamp() * 1000)
    reports = []
    for i in range(n):
        body = {"license_key": key, "device_uuid": f"scan-{i}", "report_id": f"{run}-{i}", "slot_start": slot,
                "barcode_scans": 3}  # fmt: skip
        if sightings:
            body["sightings"] = [
                {"ts_ms": ts + i, "frame": k, "format": "QR_CODE", "text": f"{run}-{i}/{k}"} for k in range(sightings)
            ]
        reports.append(("usage", body))
    return reports

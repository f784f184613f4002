"""What one hot row takes alone: pgbench against the bench database with the SQL a request runs
from the first write that leads to the hot row's lock to its commit, at the load's concurrency:

- ``usage``: a usage report's insert (``usage.hot_sql.insert_report``: the report, its counts,
  the device's day) and the add to the device's share of the item's counter (``add_to_counters``,
  ``devices.quota``), COMMIT; every transaction into ONE scan item, over the devices the load's
  hot item has (the day rows are per device, the shares by device);
- ``seat``: a new device's seat taken (the conditional UPDATE of the item's ``SeatCounter``,
  ``devices.seats.take_seat``), the device insert and what follows it to the commit.

The SQL is not copied: two real requests run in-process (Django's test client through the
whole stack) with ``connection.execute_wrapper`` capturing every statement and its parameters.
The statements from the first write on are kept (savepoints dropped); a parameter equal in both
requests becomes its literal, one that differs the way the requests differ becomes a pgbench
variable (the report id, the device uuid: unique per transaction; the device: one of the hot
item's; the new device's id: ``currval`` of its sequence), any other that differs (timestamps,
hashes) keeps the first request's value. pgbench's tps is then the ceiling of that row on this
machine, beside the CPU the run used (``bench.cpu``) and its Lock share (``bench.waits``); each
script runs again committing without waiting for the WAL flush (``SET LOCAL synchronous_commit
= off``), which says how much of the row's hold time is the commit's fsync."""

from __future__ import annotations

import json
import os
import re
import resource
import secrets
import subprocess
import tempfile
from pathlib import Path

from django.core.management.base import CommandError
from django.db import connection
from django.test import Client, override_settings

from client.tools.bench import cpu, waits

PGBENCH = "/usr/bin/pgbench"
# Production settings where the in-process request would take the development ones; no rate limit.
_SETTINGS = {"ALLOWED_HOSTS": ["*"], "API_RATE_LIMIT": "0", "API_RATE_LIMIT_ADDRESS": "0", "DEBUG": False}
_SKIP = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def capture(path: str, body: dict) -> list[tuple[str, list]]:
    """Every statement (SQL with ``%s``, parameters) of one request through the whole stack."""
    statements: list[tuple[str, list]] = []

    def wrapper(execute, sql, params, many, context):
        if many or isinstance(params, dict):
            raise CommandError(f"hotrow: cannot replay executemany or named parameters: {sql[:200]}")
        statements.append((sql, list(params or ())))
        return execute(sql, params, many, context)

    with override_settings(**_SETTINGS):
        client = Client()
        with connection.execute_wrapper(wrapper):
            response = client.post(path, data=json.dumps(body), content_type="application/json")
    if response.status_code != 200:
        raise CommandError(f"hotrow: {path} answered {response.status_code}: {response.content[:300]!r}")
    return statements


def window(statements: list[tuple[str, list]], first: str, must: list[str]) -> list[tuple[str, list]]:
    """The statements from the first matching ``first`` (a regex) to the end, savepoints
    dropped; each regex of ``must`` must match one of them (else the hot path changed shape)."""
    start = next((i for i, (sql, _) in enumerate(statements) if re.search(first, sql, re.I)), None)
    if start is None:
        raise CommandError(f"hotrow: no statement matches {first!r} in the captured request")
    kept = [(sql, params) for sql, params in statements[start:] if not sql.lstrip().upper().startswith(_SKIP)]
    for pattern in must:
        if not any(re.search(pattern, sql, re.I) for sql, _ in kept):
            raise CommandError(f"hotrow: no statement matches {pattern!r} after {first!r} in the captured request")
    return kept


def _placeholders(sql: str) -> list[str]:
    """``sql`` split around its ``%s`` placeholders (``%%`` is a literal %)."""
    parts, current, i = [], [], 0
    while i < len(sql):
        if sql.startswith("%%", i):
            current.append("%")
            i += 2
        elif sql.startswith("%s", i):
            parts.append("".join(current))
            current = []
            i += 2
        else:
            current.append(sql[i])
            i += 1
    parts.append("".join(current))
    return parts


def script(
    first: list[tuple[str, list]],
    second: list[tuple[str, list]],
    variables: list[tuple[object, object, str]],
    literal,
    *,
    setup: tuple[str, ...] | list[str] = (),
) -> tuple[str, dict]:
    """The pgbench script of one transaction: ``setup`` meta-commands, BEGIN, each statement of
    ``first`` with each parameter either its literal (``literal(value)``: SQL text) or, where it
    is ``a`` in ``first`` and ``b`` in ``second`` for some ``(a, b, expression)`` of
    ``variables``, that expression; COMMIT. Also what was kept from ``first`` though it
    differed. The two requests must have run the same statements."""
    if [sql for sql, _ in first] != [sql for sql, _ in second]:
        raise CommandError("hotrow: the two captured requests ran different statements")
    lines = list(setup) + ["BEGIN;"]
    kept: dict[str, int] = {"differing values kept from the first request": 0, "variables": 0}
    for (sql, p1), (_, p2) in zip(first, second, strict=True):
        parts = _placeholders(sql)
        if len(parts) != len(p1) + 1 or len(p1) != len(p2):
            raise CommandError(f"hotrow: {len(parts) - 1} placeholders for {len(p1)} parameters: {sql[:200]}")
        out = [parts[0]]
        for a, b, rest in zip(p1, p2, parts[1:], strict=True):
            if a == b:
                out.append(literal(a))
            else:
                expression = next((e for va, vb, e in variables if va == a and vb == b), None)
                if expression is None:
                    kept["differing values kept from the first request"] += 1
                    out.append(literal(a))
                else:
                    kept["variables"] += 1
                    out.append(expression)
            out.append(rest)
        text = " ".join("".join(out).split())  # one line: pgbench ends a command at a newline or ';'
        lines.append(text.rstrip(";") + ";")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n", kept


def literal_of_connection():
    """``value -> SQL literal`` with this connection's adapters (what client-side binding sends)."""
    import psycopg

    connection.ensure_connection()
    cursor = psycopg.ClientCursor(connection.connection)

    def literal(value) -> str:
        return cursor.mogrify("%s", [value])

    return literal


def _case(variable: str, values: list[int]) -> str:
    """A pgbench expression: ``values[:variable]``."""
    whens = " ".join(f"WHEN :{variable} = {i} THEN {v}" for i, v in enumerate(values))
    return f"CASE {whens} ELSE {values[0]} END"


def usage_script(scans, devices: list, token: str) -> tuple[str, dict]:
    """Two reports of two of ``devices`` (authorized on the scan item ``scans``) captured; the
    script reports as one of ``devices`` at random, a fresh report id each transaction."""
    from devices.quota import SHARDS, shard_of
    from licenses.clock import rfc3339, slot_start_of
    from usage.models import UsageReport

    def body(device, report_id):
        return {"license_key": scans.project.license_key, "device_uuid": device.device_uuid, "report_id": report_id,
                "slot_start": rfc3339(slot_start_of(now())), "barcode_scans": 3}  # fmt: skip

    from django.utils.timezone import now

    report = re.escape(UsageReport._meta.db_table)
    first_marker = f'^\\s*(WITH r AS \\()?\\s*INSERT INTO "?{report}"?'
    # The counter: the device's share of it (devices.quota), one conditional UPDATE.
    must = [r'UPDATE "?devices_quotashard"?']
    a, b = devices[0], devices[1]
    # A first report makes the item's shares (the exact way, once): both captured ones take a share.
    capture("/api/v1/usage", body(a, f"bounds-{token}-warm"))
    one = window(capture("/api/v1/usage", body(a, f"bounds-{token}-a")), first_marker, must)
    two = window(capture("/api/v1/usage", body(b, f"bounds-{token}-b")), first_marker, must)
    variables = [
        (f"bounds-{token}-a", f"bounds-{token}-b", f"('pgb-{token}-' || :run || '-' || :client_id || '-' || :n)"),
        (a.pk, b.pk, ":dev"),
        (shard_of(a.pk), shard_of(b.pk), f"(:dev % {SHARDS})"),  # the device's share
    ]
    setup = [
        "\\set n :n + 1",
        f"\\set k random(0, {len(devices) - 1})",
        f"\\set dev {_case('k', [d.pk for d in devices])}",
    ]
    return script(one, two, variables, literal_of_connection(), setup=setup)


def seat_script(seats, token: str) -> tuple[str, dict]:
    """Two new devices' authorizations on the seat item ``seats`` captured; the script takes a
    seat for a new device each transaction."""
    from devices.models import Device, SeatShare
    from devices.seats import SHARDS, shard_of

    def body(uuid):
        return {"license_key": seats.project.license_key, "device_uuid": uuid, "product": seats.product,
                "client_type": "desktop"}  # fmt: skip

    # The seat is taken from the device's share of the item's counter (devices.seats); a first
    # authorization makes the shares (the exact way, once), so both captured ones take a share.
    share, device = re.escape(SeatShare._meta.db_table), Device._meta.db_table
    first_marker = f'^\\s*UPDATE "?{share}"?'
    must = [f'INSERT INTO "?{re.escape(device)}"?']
    capture("/api/v1/authorize", body(f"bounds-{token}-warm"))
    one = window(capture("/api/v1/authorize", body(f"bounds-{token}-a")), first_marker, must)
    two = window(capture("/api/v1/authorize", body(f"bounds-{token}-b")), first_marker, must)
    pk_a = Device.objects.get(project=seats.project, device_uuid=f"bounds-{token}-a").pk
    pk_b = Device.objects.get(project=seats.project, device_uuid=f"bounds-{token}-b").pk
    variables = [
        (f"bounds-{token}-a", f"bounds-{token}-b", f"('pgb-{token}-' || :run || '-' || :client_id || '-' || :n)"),
        (pk_a, pk_b, f"currval(pg_get_serial_sequence('{device}', 'id'))"),
    ]
    shards = (shard_of(f"bounds-{token}-a"), shard_of(f"bounds-{token}-b"))
    if shards != (pk_a, pk_b):  # (else the device's id would take the share's expression)
        variables.insert(0, (*shards, f"(:n % {SHARDS})"))  # the new device's share
    return script(one, two, variables, literal_of_connection(), setup=["\\set n :n + 1"])


def parse_pgbench(text: str) -> dict:
    """pgbench's summary: transactions processed and failed, mean latency (ms) and tps."""

    def number(pattern: str) -> float:
        found = re.search(pattern, text, re.M)
        if not found:
            raise ValueError(f"pgbench output has no {pattern!r}")
        return float(found.group(1))

    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    return {
        "transactions": int(number(r"^number of transactions actually processed: (\d+)")),
        "failed": int(failed.group(1)) if failed else 0,
        "latency_ms": number(r"^latency average = ([\d.]+) ms"),
        "tps": number(r"^tps = ([\d.]+) \(without initial connection time\)"),
        "clients": int(number(r"^number of clients: (\d+)")),
    }


def pgbench(script_text: str, *, clients: int, seconds: float, conninfo: str) -> dict:
    """Run the script at ``clients`` for ``seconds`` (``:n`` counts each client's transactions
    from 1, ``:run`` is fresh for every call, so ids built from them never repeat): pgbench's figures, the CPU of PostgreSQL,
    pgbench and the rest over the run (``bench.cpu``) and the database's waits (``bench.waits``)."""
    db = connection.settings_dict
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    with tempfile.TemporaryDirectory(prefix="dls-hotrow-") as tmp:
        path = Path(tmp) / "tx.sql"
        path.write_text(script_text)
        argv = [PGBENCH, "-n", "-M", "simple", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)),
                "-T", str(max(1, round(seconds))), "-D", "n=0", "-D", f"run={secrets.randbelow(2**31)}", "-f", str(path),
                "-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432),
                "-U", db.get("USER") or "postgres", db["NAME"]]  # fmt: skip
        sampler = waits.Sampler(conninfo)
        with sampler.running():
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            before = cpu.snapshot()
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            out, err = process.communicate(timeout=seconds * 10 + 120)
            after = cpu.snapshot()
            reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode:
        raise CommandError(f"pgbench failed (exit {process.returncode}): {err.decode()[-1500:]}\n{script_text[:3000]}")
    figures = parse_pgbench(out.decode())
    # pgbench has exited and been reaped (communicate): its CPU is this process's children's.
    used = (reaped.ru_utime + reaped.ru_stime) - (children.ru_utime + children.ru_stime)
    figures["cpu"] = cpu.account(before, after, {}, known={"pgbench": used})
    figures["waits"] = sampler.shares((before["t"], after["t"]))
    return figures


ASYNC = "SET LOCAL synchronous_commit = off;"


def without_flush(script_text: str) -> str:
    """The same transaction committing without waiting for its WAL flush: what the row takes
    when the commit's fsync is off its hold time (a comparison, not what the product runs)."""
    if "BEGIN;\n" not in script_text:
        raise CommandError("hotrow: the script has no BEGIN")
    return script_text.replace("BEGIN;\n", f"BEGIN;\n{ASYNC}\n", 1)


def measure(world: dict, plan: dict, conninfo: str, say) -> dict:
    """Both hot rows alone at the load's concurrency: ``usage`` into the in-process table's scan
    item over as many of its devices as the load's hot item has, ``seat`` on its empty seat item;
    each also as ``<name>_async``, committing without waiting for the WAL flush."""
    from devices.models import Device

    token = secrets.token_hex(3)
    clients, seconds = int(plan["concurrency"]), float(plan.get("pgbench_s", 10))
    scans = world["hot_scans"]
    devices = list(Device.objects.filter(item=scans, device_uuid__startswith="scan-").order_by("pk"))
    devices = devices[: max(2, int(plan["usage_devices"]))]
    out = {}
    for name, (text, kept) in (
        ("usage", usage_script(scans, devices, token)),
        ("seat", seat_script(world["hot_seats_empty"], token)),
    ):
        for variant, script_text in ((name, text), (f"{name}_async", without_flush(text))):
            result = pgbench(script_text, clients=clients, seconds=seconds, conninfo=conninfo)
            result.update(kept=kept, devices=len(devices) if name == "usage" else None, seconds=seconds)
            out[variant] = result
            say(f"  pgbench, {variant}: {result['tps']:,.0f} tps at {clients} clients, "
                f"machine {result['cpu']['utilization']:.0%} busy, Lock {result['waits']['lock']:.0%}")  # fmt: skip
    return out

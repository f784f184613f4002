"""bench_api's parts (client/tools/bench/): the load generator against a real server counts what
the server counts, the issue's table says met or not from the figures, the page percentiles,
and the docs/benchmarks.md writer replaces only its own section."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from client.tools import hotpath
from client.tools.bench import invariants, report
from client.tools.bench.pages import percentile as page_percentile
from client.tools.loadgen import Scenario, percentile, prepare
from devices.models import Device
from tests import factories
from tests.quota import quota_used
from usage.models import UsageCount, UsageReport


def test_it_takes_percentiles():
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 0.5) in (50.0, 51.0) and percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


@pytest.mark.slow
def test_the_load_generator_and_the_server_agree_on_every_report(live_server, transactional_db, settings):
    settings.API_RATE_LIMIT = "0"
    settings.API_RATE_LIMIT_ADDRESS = "0"
    lic = factories.LicenseFactory(starts_at=timezone.now() - timedelta(days=1))
    project = factories.ProjectFactory(organization=lic.organization)
    factories.LicenseItemFactory(per_barcode_scan=True, project=project, license=lic, quantity=10**9, edition="mobile")
    plan = {
        "base_url": live_server.url, "license_key": project.license_key, "run": "t", "concurrency": 4,
        "usage_devices": [f"use-{i}" for i in range(4)], "duplicate_fraction": 0.3,
    }  # fmt: skip
    assert prepare(plan) == {"usage_devices": 4, "refused": 0}
    result = Scenario(plan, "usage").run(concurrency=4, duration=1.0, warmup=0.2)
    assert result["errors"] == 0 and result["accepted"] > 0 and result["duplicates"] > 0
    assert result["sent_scans"] == result["counted_scans"]
    assert UsageReport.objects.filter(device__project=project).count() == result["accepted"]
    # the rate counts the measured window only (1 s), not the warm-up's reports
    assert 0 < result["accepted_rps"] * 1.0 < result["accepted"]
    stored = UsageCount.objects.filter(report__device__project=project).aggregate(n=Sum("count"))["n"]
    assert stored == result["sent_scans"]


def test_it_replaces_only_the_api_section(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nIntro.\n\n## API\n\nold table\n\n## Jobs\n\njobs table\n")
    report.write_doc("| new | table |\n", doc)
    text = doc.read_text()
    assert "old table" not in text and "| new | table |" in text
    assert text.startswith("# Benchmarks\n\nIntro.\n\n## API\n") and text.endswith("## Jobs\n\njobs table\n")

    doc.write_text("# Benchmarks\n\n## Jobs\n\njobs table\n")
    report.write_doc("| t |\n", doc)
    text = doc.read_text()
    assert text.index("## Jobs") < text.index("## API") and "jobs table" in text and "| t |" in text


@pytest.mark.django_db(transaction=True)  # hotpath closes the connection before each row
def test_the_in_process_table_measures_authorize_with_a_session_password(settings):
    """make bench puts authorize on a protected project beside the same request without one
    (SPEC 6: the check must not show in throughput); both are answered 200, same statements."""
    from client.tools import hotpath
    from licenses.protection import set_protection
    from tests import factories

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    empty, full, protected = (factories.LicenseItemFactory(per_client_device=True, quantity=100) for _ in range(3))
    scans = factories.LicenseItemFactory(per_barcode_scan=True, quantity=10**6)
    for item in (empty, full, protected, scans):
        item.product, item.edition = "dbr", ""
        item.save()
    set_protection(protected.project, actor="test", now=factories.NOW, session_password="s3cret")
    ceiling = factories.LicenseItemFactory(per_client_device=True, quantity=3, product="dbr", edition="")
    until = factories.NOW + timedelta(days=30)
    Device.objects.bulk_create(
        Device(project=ceiling.project, device_uuid=f"held-{i}", item=ceiling, client_type="desktop", state="active",
               first_authorized_at=factories.NOW, authorized_at=factories.NOW, last_seen_at=factories.NOW,
               active_until=until)
        for i in range(ceiling.seat_ceiling)
    )  # fmt: skip
    rows = hotpath.measure(
        seats_empty=empty, seats_full=full, scans=scans, now=factories.NOW, n=3,
        seats_protected=protected, session_password="s3cret", seats_at_ceiling=ceiling,
    )  # fmt: skip
    by_what = {r["what"]: r for r in rows}
    with_pw = by_what["authorize, a new device, 0 seats taken, with a session password"]
    without = by_what["authorize, a new device, 0 seats taken"]
    assert with_pw["statuses"] == without["statuses"] == {200: 3}
    assert with_pw["statements"] == without["statements"]
    # The full item refuses every new device; the reports with sightings are counted and take
    # one statement more than those without on PostgreSQL (the dedup memory, usage.hot_sql).
    assert by_what[f"refusal: a new device, all {ceiling.seat_ceiling} seats of its item taken"]["statuses"] == {403: 3}
    plain = by_what["usage, a report into one scan item"]
    seen = by_what["usage, a report with 2 barcode sightings into one scan item"]
    assert plain["statuses"] == seen["statuses"] == {200: 3}
    if connection.vendor == "postgresql":
        assert seen["statements"] == plain["statements"] + 1


def test_page_percentiles_are_nearest_rank():
    ten = [float(v) for v in (10, 1, 9, 2, 8, 3, 7, 4, 6, 5)]
    assert page_percentile(ten, 0.50) == 5.0 and page_percentile(ten, 0.95) == 10.0
    assert page_percentile([4.0], 0.95) == 4.0 and page_percentile([1.0, 2.0], 0.5) == 1.0


def _run(rps: float, p99: float, ping_rps: float = 1000.0, **extra) -> dict:
    return {"rps": rps, "p50_ms": p99 / 3, "p99_ms": p99, "ping_rps": ping_rps, "ping_p50_ms": 2.0,
            "ping_p99_ms": 10.0, "statuses": {"200": int(rps * 10)}, "codes": {}, "errors": 0, "loadavg": 1.0,
            "accepted": int(rps * 10), **extra}  # fmt: skip


def _status(row: str) -> str:
    return row.split(" | ")[3].strip()


def test_the_issue_table_says_met_only_where_the_figure_meets_the_goal():
    plan = {"duration": 10.0, "concurrency": 32, "devices": 100_000, "reports": 1_000_000}
    load = {"authorize": _run(600, 40), "usage": _run(2500, 45), "usage_spread": _run(3000, 30),
            "new_0": _run(1200, 40), "new_40k": _run(500, 90)}  # fmt: skip
    hot = [
        {"what": "authorize, a new device, 0 seats taken", "statements": 5.0, "web_cpu_ms": 3.0, "db_cpu_ms": 1.0},
        {"what": "usage, a report into one scan item", "statements": 4.0, "web_cpu_ms": 2.0, "db_cpu_ms": 1.0},
        {"what": "floor: a ninja POST of the usage schema that does nothing", "statements": 0, "web_cpu_ms": 0.9},
    ]
    pages = [{"page": "statistics", "p50_ms": 150.0, "p95_ms": 180.0},
             {"page": "devices.csv (all)", "p50_ms": 400.0, "p95_ms": 650.0},
             {"page": "devices, search", "p50_ms": 20.0, "p95_ms": 30.0}]  # fmt: skip
    memory = {"bytes": 12 * 2**20, "chunks": 50, "peak_bytes": 2**20, "ms": 300.0}
    rows = {
        line.split(" | ")[0].lstrip("| "): line for line in report.summary(plan, load, hot, pages, memory).splitlines()
    }
    assert _status(rows["authorize throughput vs trivial endpoint"]) == "met"
    assert _status(rows["usage throughput vs trivial endpoint"]) == "met"
    assert _status(rows["p50 / p99 at 32 connections"]) == "met"
    assert _status(rows["web CPU per usage report"]) == "met" and "0.90 ms" in rows["web CPU per usage report"]
    assert _status(rows["reports/s into one scan item"]) == "met" and "3,000" in rows["reports/s into one scan item"]
    assert _status(rows["new devices/s into one seat item"]) == "not met"  # 500 at 40,000 seats: not flat
    assert _status(rows["statistics page, 100,000 devices / 1,000,000 reports"]) == "met"
    assert _status(rows["devices.csv, 100,000 devices"]) == "not met"  # p95 650 ms
    assert _status(rows["device search, 100,000 devices"]) == "met"
    assert _status(rows["cores for 5,600 reports/s (on paper)"]) == "not met"  # 5,600 x 3 ms = 16.8 cores


# --- what bounds each figure: CPU accounting, waits, one hot row alone (bench.cpu, bench.waits, bench.hotrow)

PROC_STAT = "cpu  1000 50 300 8000 200 10 40 7 30 0\ncpu0 500 25 150 4000 100 5 20 3 15 0\nintr 12345 0 0\n"


def test_it_reads_the_machine_cpu_line():
    from client.tools.bench.cpu import parse_cpu_line

    # busy = user + nice + system + irq + softirq; guest (30) is inside user already
    assert parse_cpu_line(PROC_STAT) == {"busy": 1400, "idle": 8200, "steal": 7, "total": 9607}
    with pytest.raises(ValueError):
        parse_cpu_line("intr 1 2 3\n")


def test_it_reads_a_process_stat_line_whatever_its_command_name():
    from client.tools.bench.cpu import parse_pid_stat

    tail = " ".join(["S", "42"] + ["0"] * 9 + ["150", "25", "7", "3"] + ["0"] * 4 + ["9999", "0"])
    p = parse_pid_stat(f"4242 (gunicorn: worker (x) [dls]) {tail}\n")
    assert (p.comm, p.ppid, p.own, p.children, p.start) == ("gunicorn: worker (x) [dls]", 42, 175, 10, 9999)


def _procs(**rows):
    from client.tools.bench.cpu import Proc

    return {
        int(pid[1:]): Proc(comm, ppid, own, children, start) for pid, (comm, ppid, own, children, start) in rows.items()
    }


def test_a_group_counts_its_tree_and_its_reaped_children_once():
    from client.tools.bench.cpu import group_ticks, postmasters

    before = _procs(p10=("gunicorn", 1, 100, 0, 5), p11=("gunicorn", 10, 1000, 0, 6), p12=("gunicorn", 10, 500, 0, 6),
                    p20=("postgres", 1, 50, 0, 2), p21=("postgres", 20, 300, 0, 3), p30=("bash", 1, 9, 0, 1))  # fmt: skip
    # worker 12 used 80 more ticks, exited and was reaped (its 580 now in the master's cutime);
    # worker 13 started and used 40; worker 11 used 200; the master 10.
    after = _procs(p10=("gunicorn", 1, 110, 580, 5), p11=("gunicorn", 10, 1200, 0, 6), p13=("gunicorn", 10, 40, 0, 90),
                   p20=("postgres", 1, 51, 0, 2), p21=("postgres", 20, 400, 0, 3), p30=("bash", 1, 99, 0, 1))  # fmt: skip
    assert group_ticks(before, after, [10]) == 10 + 200 + 80 + 40
    assert postmasters(after) == [20]
    assert group_ticks(before, after, postmasters(after)) == 101
    # worker 11 used 50 more and was reaped (1,050 into the master's cutime); its pid was reused
    # by a new worker (another start time) that used 7; worker 12 idle
    reused = _procs(p10=("gunicorn", 1, 110, 1050, 5), p11=("gunicorn", 10, 7, 0, 95), p12=("gunicorn", 10, 500, 0, 6))
    assert group_ticks(before, reused, [10]) == 10 + 50 + 7


def test_the_accounting_splits_the_machine_busy_time_and_the_rest_is_other():
    from client.tools.bench import cpu

    tick = cpu.CLK_TCK
    before = {
        "t": 100.0,
        "machine": {"busy": 0, "idle": 0, "steal": 0, "total": 0},
        "procs": _procs(p10=("gunicorn", 1, 0, 0, 5), p20=("postgres", 1, 0, 0, 2), p40=("python", 1, 0, 0, 7)),
    }
    after = {"t": 102.0, "machine": {"busy": 3 * tick, "idle": tick, "steal": 0, "total": 4 * tick},
             "procs": _procs(p10=("gunicorn", 1, tick, 0, 5), p20=("postgres", 1, tick // 2, 0, 2),
                             p40=("python", 1, tick // 4, 0, 7))}  # fmt: skip
    out = cpu.account(before, after, {"gunicorn": [10], "loadgen": [40]}, cores=2)
    assert out["seconds"] == pytest.approx({"gunicorn": 1.0, "loadgen": 0.25, "postgres": 0.5, "other": 1.25})
    assert out["utilization"] == pytest.approx(0.75) and out["wall_s"] == 2.0
    per = cpu.per_request_ms(out, 1000)
    assert per["gunicorn"] == pytest.approx(1.0) and per["total"] == pytest.approx(3.0)


def test_a_real_snapshot_sees_this_process():
    import os

    from client.tools.bench import cpu

    a = cpu.snapshot()
    sum(i * i for i in range(300_000))
    b = cpu.snapshot()
    assert os.getpid() in a["procs"] and b["t"] > a["t"] and b["machine"]["total"] >= a["machine"]["total"]
    assert cpu.group_ticks(a["procs"], b["procs"], [os.getpid()]) >= 0


def test_wait_samples_are_classified_and_windowed():
    from client.tools.bench.waits import category, shares

    assert category(None, None) == "CPU" and category("Lock", "tuple") == "Lock:tuple"
    assert category("Client", "ClientRead") == "Client"
    samples = [
        (0.5, [("Lock", "transactionid")] * 9),  # before the window
        (1.0, [(None, None), ("Lock", "transactionid")]),
        (1.5, [(None, None), (None, None), ("Lock", "tuple"), ("IO", "DataFileRead")]),
        (2.0, []),
    ]
    out = shares(samples, (1.0, 2.0))
    assert out["samples"] == 3 and out["mean_active"] == 2.0
    assert out["lock"] == pytest.approx(2 / 6)
    assert out["shares"] == pytest.approx({"CPU": 3 / 6, "Lock:transactionid": 1 / 6, "Lock:tuple": 1 / 6, "IO": 1 / 6})
    assert shares(samples, (5.0, 6.0))["samples"] == 0


PGBENCH_OUT = """pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: /tmp/tx.sql
scaling factor: 1
query mode: simple
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 12345
number of failed transactions: 0 (0.000%)
latency average = 12.961 ms
initial connection time = 31.062 ms
tps = 1234.567890 (without initial connection time)
"""


def test_it_reads_pgbench_output():
    from client.tools.bench.hotrow import parse_pgbench

    assert parse_pgbench(PGBENCH_OUT) == {"transactions": 12345, "failed": 0, "latency_ms": 12.961,
                                          "tps": 1234.56789, "clients": 16}  # fmt: skip
    with pytest.raises(ValueError):
        parse_pgbench("pgbench: error: connection to server failed\n")


def test_the_script_turns_what_differs_between_two_requests_into_variables():
    from django.core.management.base import CommandError

    from client.tools.bench.hotrow import script, window

    captured = [
        ("SELECT 1 FROM t WHERE k = %s", ["key"]),
        ('WITH r AS (INSERT INTO "usage_usagereport" (a, b, c) SELECT %s, %s, %s) SELECT 1', [7, "rid-a", "10:00"]),
        ('SAVEPOINT "s1"', []),
        ("INSERT INTO devices_quotacounter (x) VALUES (%s) ON CONFLICT DO UPDATE SET y = y || '%%'", [3]),
    ]
    other = [captured[0], (captured[1][0], [8, "rid-b", "10:01"]), captured[2], captured[3]]
    first = window(captured, r"INSERT INTO \"?usage_usagereport", [r"devices_quotacounter.*ON CONFLICT"])
    second = window(other, r"INSERT INTO \"?usage_usagereport", [r"devices_quotacounter.*ON CONFLICT"])
    assert [sql for sql, _ in first] == [captured[1][0], captured[3][0]]  # from the first write, no savepoint
    text, kept = script(first, second, [(7, 8, ":dev"), ("rid-a", "rid-b", "(:n)")], lambda v: repr(v),
                        setup=["\\set n :n + 1"])  # fmt: skip
    assert text.splitlines() == [
        "\\set n :n + 1",
        "BEGIN;",
        "WITH r AS (INSERT INTO \"usage_usagereport\" (a, b, c) SELECT :dev, (:n), '10:00') SELECT 1;",
        "INSERT INTO devices_quotacounter (x) VALUES (3) ON CONFLICT DO UPDATE SET y = y || '%';",
        "COMMIT;",
    ]
    assert kept == {"differing values kept from the first request": 1, "variables": 2}
    with pytest.raises(CommandError):
        window(captured, r"UPDATE nothing", [])
    with pytest.raises(CommandError):
        window(captured, r"INSERT INTO \"?usage_usagereport", [r"devices_seatcounter"])
    with pytest.raises(CommandError):
        script(first, second[:1], [], repr)


def _authorized(item, uuids):
    from django.test import Client

    client = Client()
    for uuid in uuids:
        body = {"license_key": item.project.license_key, "device_uuid": uuid, "product": item.product,
                "client_type": "desktop"}  # fmt: skip
        assert client.post("/api/v1/authorize", body, content_type="application/json").status_code == 200


@pytest.mark.django_db(transaction=True)  # pgbench commits from connections of its own
def test_pgbench_replays_a_captured_report_and_seat_take_and_they_count_exactly(settings):
    """The scripts come from real requests captured in-process; replayed by pgbench they insert
    one report (with its counts) per transaction and move the counters by exactly as much."""
    import shutil

    from django.db import connection

    from client.tools.bench import common, hotrow
    from devices.models import Device
    from devices.seats import recount

    if connection.vendor != "postgresql" or not shutil.which(hotrow.PGBENCH):
        pytest.skip("pgbench against PostgreSQL")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.API_RATE_LIMIT = settings.API_RATE_LIMIT_ADDRESS = "0"
    lic = factories.LicenseFactory(starts_at=timezone.now() - timedelta(days=1))
    scans = factories.LicenseItemFactory(per_barcode_scan=True, license=lic, quantity=10**9, product="dbr", edition="")
    seats = factories.LicenseItemFactory(per_client_device=True, license=lic, quantity=10**6, product="dbr", edition="")
    _authorized(scans, [f"scan-{i}" for i in range(3)])
    _authorized(seats, ["first"])  # the seat counter row exists
    devices = list(Device.objects.filter(item=scans).order_by("pk"))
    text, kept = hotrow.usage_script(scans, devices, "t1")
    assert kept["variables"] >= 3  # the report id (twice: insert, its NOT EXISTS check) and the device
    assert text.count("BEGIN;") == 1 and text.rstrip().endswith("COMMIT;") and "devices_quotashard" in text
    used = quota_used(scans, "barcode_scans")
    reports = UsageReport.objects.filter(item=scans).count()
    conninfo = common.database_url(connection.settings_dict, connection.settings_dict["NAME"])
    out = hotrow.pgbench(text, clients=2, seconds=1, conninfo=conninfo)
    assert out["failed"] == 0 and out["transactions"] > 0 and out["tps"] > 0
    assert UsageReport.objects.filter(item=scans).count() == reports + out["transactions"]
    assert quota_used(scans, "barcode_scans") == used + 3 * out["transactions"]
    stored = UsageCount.objects.filter(item=scans).aggregate(n=Sum("count"))["n"]
    assert stored == quota_used(scans, "barcode_scans")
    assert set(out["cpu"]["seconds"]) == {"postgres", "pgbench", "other"} and out["waits"]["samples"] > 0
    # the same transaction, committing without waiting for the WAL flush, counts the same
    used, reports = quota_used(scans, "barcode_scans"), reports + out["transactions"]
    quick = hotrow.without_flush(text)
    assert quick.splitlines()[3:5] == ["BEGIN;", hotrow.ASYNC]
    out = hotrow.pgbench(quick, clients=2, seconds=1, conninfo=conninfo)
    assert out["failed"] == 0 and UsageReport.objects.filter(item=scans).count() == reports + out["transactions"]
    assert quota_used(scans, "barcode_scans") == used + 3 * out["transactions"]

    text, kept = hotrow.seat_script(seats, "t2")
    assert "devices_seatshare" in text and kept["variables"] >= 1
    active = Device.objects.filter(item=seats, state=Device.ACTIVE).count()
    assert recount(fix=False) == []
    out = hotrow.pgbench(text, clients=2, seconds=1, conninfo=conninfo)
    assert out["failed"] == 0 and out["transactions"] > 0
    assert Device.objects.filter(item=seats, state=Device.ACTIVE).count() == active + out["transactions"]
    assert recount(fix=False) == []  # the counter and its shares moved with every device


def _accounted(rps: float, *, web_ms: float, db_ms: float, gen_ms: float, busy: float, lock: float, wall=10.0):
    """A load run as load.run returns it, with its CPU accounting and waits."""
    requests = int(rps * wall)
    seconds = {"gunicorn": web_ms * requests / 1000, "postgres": db_ms * requests / 1000,
               "loadgen": gen_ms * requests / 1000}  # fmt: skip
    busy_s = busy * 2 * wall
    seconds["other"] = busy_s - sum(seconds.values())
    cpu = {"wall_s": wall, "cores": 2, "busy_s": busy_s, "steal_s": 0.0, "seconds": seconds, "utilization": busy}
    waits = {"samples": 400, "mean_active": 3.0, "lock": lock,
             "shares": {"CPU": 1 - lock, "Lock:transactionid": lock} if lock else {"CPU": 1.0}}  # fmt: skip
    return _run(rps, 90.0) | {"requests": requests, "mean_ms": 16 / rps * 1000, "cpu": cpu, "waits": waits}


def _accounted_load(*, new_gen_ms: float, new_busy: float, new_0_lock: float) -> dict:
    """The five load runs and two pings of ``load.run``, each accounted (``_accounted``); the new
    devices' runs as given."""
    ping = _accounted(1000, web_ms=0.9, db_ms=0.0, gen_ms=0.9, busy=0.99, lock=0.0)
    new = {"web_ms": 4.0, "db_ms": 3.0, "gen_ms": new_gen_ms, "busy": new_busy}
    return {"authorize": _accounted(200, web_ms=4.0, db_ms=3.0, gen_ms=1.0, busy=0.97, lock=0.02),
            "usage": _accounted(180, web_ms=5.0, db_ms=4.0, gen_ms=1.0, busy=0.95, lock=0.05),
            "usage_spread": _accounted(190, web_ms=5.0, db_ms=4.0, gen_ms=1.0, busy=0.96, lock=0.0),
            "new_0": _accounted(150, **new, lock=new_0_lock), "new_40k": _accounted(150, **new, lock=0.1),
            "pings": [ping, ping]}  # fmt: skip


def _alone(db_s: float) -> dict:
    """One hot row alone in pgbench (``hotrow.pgbench``): 15,000 transactions in 10 s, ``db_s`` of
    PostgreSQL CPU."""
    return {"tps": 1500.0, "clients": 16, "seconds": 10.0, "transactions": 15000, "latency_ms": 10.7, "failed": 0,
            "cpu": {"seconds": {"postgres": db_s, "pgbench": 2.0, "other": 1.0}, "utilization": 0.9,
                    "wall_s": 10.0, "cores": 2, "busy_s": 18.0},
            "waits": {"samples": 500, "mean_active": 5.0, "lock": 0.4, "shares": {"Lock:transactionid": 0.4}}}  # fmt: skip


def test_the_bounds_say_cpu_bound_with_the_ceiling_and_littles_law_or_lock_bound():
    plan = {"duration": 10.0, "concurrency": 16, "devices": 100_000, "reports": 1_000_000}
    load = _accounted_load(new_gen_ms=1.0, new_busy=0.5, new_0_lock=0.6)
    hot_rows = {"usage": _alone(15.0)}
    rows = {line.split(" | ")[0].lstrip("| "): line for line in report.summary(plan, load, [], [], _memory(), hot_rows).splitlines()}  # fmt: skip
    usage = rows["usage throughput vs trivial endpoint"].split(" | ")[4]
    # 10 ms of CPU per report (web 5 + PostgreSQL 4 + load generator 1): 200 req/s on 2 cores, 0.2 of the pings' 1,000
    assert usage.startswith("CPU-bound: 95% busy") and "10.00 ms" in usage
    assert "its CPU ceiling of 200 req/s is 0.20x the trivial endpoint's measured 1,000" in usage
    p99 = rows["p50 / p99 at 16 connections"].split(" | ")[4]
    assert "16 / 180 req/s = 89 ms mean (measured 89)" in p99 and "needs 320 req/s" in p99
    assert "even at its CPU ceiling of 200 req/s 80 ms" in p99  # 2 cores / 10 ms
    one_item = rows["reports/s into one scan item"].split(" | ")[4]
    assert "CPU ceiling 200 req/s" in one_item and "Lock 5%" in one_item and "alone in pgbench: 1,500 tps" in one_item
    assert "spread over 100 items: 190 req/s, Lock 0%" in one_item and "its CPU allows 1,765" in one_item
    seat = rows["new devices/s into one seat item"].split(" | ")[4]
    assert seat.startswith("at 0 seats: lock-bound: 60%") and "at 40,000: neither CPU nor row lock: 50% busy" in seat
    assert "at 40,000: neither CPU nor row lock: 50% busy, 120% of it this benchmark's processes, Lock 10%;" in seat
    assert (
        report.verdict(0.89, None, 0.99) == "neither CPU nor row lock: 89% busy, 99% of it this benchmark's processes"
    )

    text = report.bounds(plan, load, hot_rows)
    lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    ping_row = lines["GET /healthz/ping, the trivial endpoint (2 runs together)"]
    assert "| 0.90 / 0.00 / 0.90 / " in ping_row and "CPU-bound: 99% busy" in ping_row
    usage_row = lines["POST /api/v1/usage, every report into one scan item"]
    assert "| 200 (222) |" in usage_row and "| 88.9 vs 88.9 |" in usage_row  # 2 cores / 10 ms (web + db 9 ms)
    hot = next(v for k, v in lines.items() if k.startswith("a usage report into one scan item"))
    # 2 cores / (1.00 + 0.13 ms) = 1,765 tx/s the CPU allows; 17 of the 18 busy seconds pgbench's and PostgreSQL's
    assert "| 1,500 | 1,765 |" in hot and "| 1.00 / 0.13 / 0.07 |" in hot
    assert "CPU-bound: 90% busy, 94% of it this benchmark's processes" in hot


def _floor_world() -> tuple[dict, dict, dict, list[dict]]:
    """A plan, a load with its run at the issue's concurrency, pgbench's hot rows and the
    in-process rows: everything the floor is made of."""
    plan = {"duration": 10.0, "warmup": 2.0, "concurrency": 16, "devices": 100_000, "reports": 1_000_000,
            "page_repeats": 10}  # fmt: skip
    load = _accounted_load(new_gen_ms=0.8, new_busy=0.97, new_0_lock=0.1)
    load["wide"] = {"concurrency": 32, "loadavg": 5.0, "ping": _run(1000, 63.0), "usage": _run(180, 172.0)}
    hot_rows = {"usage": _alone(15.0), "seat": _alone(12.0)}  # 1.00 and 0.80 ms of PostgreSQL a transaction
    hot = [{"what": hotpath.NEW_DEVICE_ROW, "statements": 5.0, "web_cpu_ms": 2.0, "db_cpu_ms": 1.0},
           {"what": f"{hotpath.NEW_DEVICE_ROW}, with a session password", "statements": 5.0, "web_cpu_ms": 9.0,
            "db_cpu_ms": 1.0},
           {"what": hotpath.USAGE_ROW, "statements": 4.0, "web_cpu_ms": 3.0, "db_cpu_ms": 1.0},
           {"what": hotpath.NOTHING_ROW, "statements": 0.0, "web_cpu_ms": 0.5, "db_cpu_ms": 0.0}]  # fmt: skip
    for row in hot:
        row |= {"rate": 400.0, "statuses": {"200": 400}}
    return plan, load, hot_rows, hot


def _bound_of(plan, load, hot, hot_rows, what: str) -> str:
    rows = {line.split(" | ")[0].lstrip("| "): line for line in report.summary(plan, load, hot, [], _memory(), hot_rows).splitlines()}  # fmt: skip
    return rows[what].split(" | ")[4].removesuffix(" |")


def test_the_bounds_say_what_each_request_would_cost_with_every_overhead_at_the_trivial_endpoints():
    plan, load, hot_rows, hot = _floor_world()
    usage = _bound_of(plan, load, hot, hot_rows, "usage throughput vs trivial endpoint")
    # 0.90 (the ping's web CPU) + 2.50 (3.0 - 0.5 in-process) + 1.00 (pgbench) + 1.00 (load generator) = 5.40 ms
    assert "HTTP and middleware 0.90 ms" in usage and "a report's own work as now 2.50 ms" in usage
    assert "its writes as now 1.00 ms" in usage and "the load generator 1.00 ms) a report would cost 5.40 ms" in usage
    # 2 cores / 5.4 ms = 370 req/s, 0.37 of the pings' measured 1,000 (not of their CPU ceiling)
    assert "5.40 ms: 370 req/s, 0.37x the trivial endpoint's 1,000" in usage
    # 0.5x = 500 req/s = 4.0 ms a request: 4.0 - 0.9 - 1.0 = 2.10 ms for the work and writes (2.5 + 1.0 now)
    assert usage.endswith("0.5x needs its own work and writes within 2.10 ms (3.50 now)")
    # the authorization pool's requests are not a new device's: no floor claimed for them
    authorize = _bound_of(plan, load, hot, hot_rows, "authorize throughput vs trivial endpoint")
    assert "would cost" not in authorize and "0.25x the trivial endpoint's measured 1,000" in authorize  # 2 / 8 ms
    one_item = _bound_of(plan, load, hot, hot_rows, "reports/s into one scan item")
    assert "a report would cost 5.40 ms: 370 req/s (455 with the load generator on a host of its own)" in one_item
    # 2,000 req/s = 1.0 ms a request, less than HTTP and the load generator (1.9); without it 1.0 - 0.9 = 0.10
    assert one_item.endswith("2,000 req/s out of reach on these cores whatever the request does (3.50 ms now), "
                             "with the load generator elsewhere needs its own work and writes within 0.10 ms (3.50 now)")  # fmt: skip
    seat = _bound_of(plan, load, hot, hot_rows, "new devices/s into one seat item")
    # the plain new device's row (2.0 ms), not the session password's: 0.90 + 1.50 + 0.80 + 0.80 = 4.00 ms
    assert "a new device would cost 4.00 ms: 500 req/s (625 with the load generator on a host of its own)" in seat
    assert "1,000 req/s needs its own work and writes within 0.30 ms (2.30 now), with the load generator " in seat
    assert "elsewhere needs its own work and writes within 1.10 ms (2.30 now)" in seat
    # the rate into one item counts the reports accepted in the measured window only (loadgen's accepted_rps)
    load["usage"]["accepted_rps"] = 150.0
    assert "| reports/s into one scan item | 150 (spread over 100 items: 190) |" in report.summary(
        plan, load, hot, [], _memory(), hot_rows
    )
    # without the in-process rows (or pgbench) no floor is claimed
    assert "would cost" not in _bound_of(plan, load, [], hot_rows, "usage throughput vs trivial endpoint")
    assert "would cost" not in _bound_of(plan, load, hot, {}, "reports/s into one scan item")


def test_the_p99_goal_is_read_at_the_issues_concurrency_too():
    plan, load, hot_rows, hot = _floor_world()
    p99_row = "p50 / p99 at 16 connections"
    p99 = _bound_of(plan, load, hot, hot_rows, p99_row)
    assert "at the issue's 32 connections usage p99 172 ms and the trivial endpoint's own p99 63 ms" in p99
    assert "(an endpoint that does nothing misses the goal there)" in p99
    # at the report's floor rate (370 req/s) Little's law gives 16 / 370 = 43 ms and 32 / 370 = 86 ms
    assert p99.endswith("at a report's floor rate (370 req/s, above) the mean would be 43 ms at 16 and 86 ms at 32")
    load["wide"]["ping"] = _run(1000, 50.0)
    assert "misses" not in _bound_of(plan, load, hot, hot_rows, p99_row)
    load["wide"]["ping"] = _run(1000, 51.0)
    assert "misses" in _bound_of(plan, load, hot, hot_rows, p99_row)

    def status() -> str:
        lines = report.summary(plan, load, hot, [], _memory(), hot_rows).splitlines()
        return _status(next(line for line in lines if line.startswith(f"| {p99_row}")))

    for name in ("authorize", "usage"):
        load[name]["p99_ms"] = 40.0
    load["wide"]["usage"] = _run(180, 50.0)
    assert status() == "met"
    load["wide"]["usage"] = _run(180, 51.0)  # met at 16 connections, not at the issue's 32
    assert status() == "not met"
    del load["wide"]
    assert status() == "met"


def test_the_run_at_the_issues_concurrency_is_in_the_table_and_in_the_counted_once_invariant(monkeypatch):
    monkeypatch.setattr(report.common, "machine", lambda: "2 CPUs")  # (it asks PostgreSQL its version)
    plan, load, hot_rows, hot = _floor_world()
    load |= {"run": "r1", "loadavg_start": 1.0, "loadavg_end": 2.0}
    load["usage"] |= {"sent_scans": 300, "counted_scans": 300, "duplicates": 5}
    load["wide"]["usage"] |= {"sent_scans": 100, "counted_scans": 99, "duplicates": 1, "mean_ms": 170.0}
    prefixes, usage = invariants.hot_item_usage(load)
    assert prefixes == ["use-r1-", "use-r1w-"]
    assert usage == {"accepted": 1800 + 1800, "sent_scans": 400, "counted_scans": 399, "errors": 0, "duplicates": 6}
    assert invariants.hot_item_usage({k: v for k, v in load.items() if k != "wide"}) == (["use-r1-"], load["usage"])
    text = report.table(plan, load, hot, [], _memory(), {}, server={"workers": 3, "threads": 2, "redis": True},
                        generate_s=1.0, rollup_s=1.0, hot_rows=hot_rows)  # fmt: skip
    assert ("At the issue's 32 connections, after the runs above (load average 5.0): GET /healthz/ping 1,000 req/s, "
            "p50 21.0 / p99 63.0 ms; POST /api/v1/usage into the one scan item 180 req/s, p50 57.3 / p99 172.0 ms "
            "(mean 170.0 ms, Little's law 177.8).") in text  # fmt: skip


def _memory() -> dict:
    return {"bytes": 12 * 2**20, "chunks": 50, "peak_bytes": 2**20, "ms": 300.0}


class _FakeConnection:
    """``psycopg.connect`` for ``pages.settle``: answers the autovacuum query from a script."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.sent: list[str] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql):
        self.sent.append(sql)
        rows = [] if sql.startswith("VACUUM") else self.answers.pop(0) if self.answers else []

        class Result:
            def fetchall(self):
                return [(q,) for q in rows]

        return Result()


def _settle_with(monkeypatch, busy: list[float], vacuuming: list[list[str]], limit_s: float = 60.0, vacuum=False):
    from client.tools.bench import pages

    windows = iter(busy)
    clock = iter(range(0, 10_000, 2))
    fake = _FakeConnection(vacuuming)
    monkeypatch.setattr(pages.psycopg, "connect", lambda *a, **k: fake)
    monkeypatch.setattr(pages.cpu, "snapshot", lambda: {})
    monkeypatch.setattr(pages.cpu, "account", lambda before, after, groups: {"utilization": next(windows)})
    monkeypatch.setattr(pages.time, "sleep", lambda s: None)
    monkeypatch.setattr(pages.time, "monotonic", lambda: float(next(clock)))
    return pages.settle("postgresql://unused", lambda text: None, limit_s=limit_s, vacuum=vacuum), fake.sent


def test_the_pages_wait_for_autovacuum_and_idle_cpus(monkeypatch):
    vacuuming = [["autovacuum: VACUUM public.devices_decision"], ["autovacuum: ANALYZE public.usage_usagereport"], []]
    out, sent = _settle_with(monkeypatch, busy=[0.05, 0.05, 0.40, 0.04], vacuuming=vacuuming, vacuum=True)
    # the database vacuumed first (2 s on the fake clock), then quiet only on the fourth window:
    # the first two had autovacuum running, the third busy CPUs
    assert sent[0] == "VACUUM (ANALYZE)" and sent.count("VACUUM (ANALYZE)") == 1 and len(sent) == 5  # then 4 windows
    assert out["quiet"] and out["busy"] == 0.04 and out["vacuum_s"] == 2.0 and out["waited_s"] == 10.0
    assert out["autovacuum"] == [
        "autovacuum: ANALYZE public.usage_usagereport",
        "autovacuum: VACUUM public.devices_decision",
    ]


def test_the_pages_are_timed_anyway_after_the_limit_and_the_doc_says_so(monkeypatch):
    out, sent = _settle_with(monkeypatch, busy=[0.9] * 10, vacuuming=[], limit_s=5.0)
    assert not out["quiet"] and out["waited_s"] == 6.0 and not any(q.startswith("VACUUM") for q in sent)
    window = {"seconds": {"web": 3.0, "postgres": 2.0, "client": 1.0, "other": 0.5}, "utilization": 0.5, "wall_s": 6.5}
    line = report.pages_quiet_line({"settle": out, "cpu": window})
    assert "not quiet after 6 s: timed anyway" in line and "no autovacuum running" in line
    assert "web 3.0, postgres 2.0, client 1.0, other 0.5" in line and "50% busy" in line
    quiet = report.pages_quiet_line(
        {"settle": {"quiet": True, "waited_s": 42.0, "vacuum_s": 30.0,
                    "autovacuum": ["autovacuum: VACUUM public.devices_device"]},
         "cpu": window}
    )  # fmt: skip
    assert "30 s of the 42 s it waited" in quiet and "(autovacuum meanwhile: VACUUM public.devices_device)" in quiet
    assert "timed anyway" not in quiet

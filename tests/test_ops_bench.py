"""bench_api's parts (client/tools/bench/): the load generator against a real server counts what
the server counts, the issue's table says met or not from the figures, the page percentiles,
and the docs/benchmarks.md writer replaces only its own section."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from client.tools.bench import report
from client.tools.bench.pages import percentile as page_percentile
from client.tools.loadgen import Scenario, percentile, prepare
from tests import factories
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
    rows = hotpath.measure(
        seats_empty=empty, seats_full=full, scans=scans, now=factories.NOW, n=3,
        seats_protected=protected, session_password="s3cret",
    )  # fmt: skip
    by_what = {r["what"]: r for r in rows}
    with_pw = by_what["authorize, a new device, 0 seats taken, with a session password"]
    without = by_what["authorize, a new device, 0 seats taken"]
    assert with_pw["statuses"] == without["statuses"] == {200: 3}
    assert with_pw["statements"] == without["statements"]


def test_page_percentiles_are_nearest_rank():
    ten = [float(v) for v in (10, 1, 9, 2, 8, 3, 7, 4, 6, 5)]
    assert page_percentile(ten, 0.50) == 5.0 and page_percentile(ten, 0.95) == 10.0
    assert page_percentile([4.0], 0.95) == 4.0 and page_percentile([1.0, 2.0], 0.5) == 1.0


def _run(rps: float, p99: float, ping_rps: float = 1000.0, **extra) -> dict:
    return {"rps": rps, "p50_ms": p99 / 3, "p99_ms": p99, "ping_rps": ping_rps, "ping_p50_ms": 2.0,
            "ping_p99_ms": 10.0, "statuses": {"200": int(rps * 10)}, "codes": {}, "errors": 0, "loadavg": 1.0,
            "accepted": int(rps * 10), **extra}  # fmt: skip


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
    assert rows["authorize throughput vs trivial endpoint"].endswith("| met |")
    assert rows["usage throughput vs trivial endpoint"].endswith("| met |")
    assert rows["p50 / p99 at 32 connections"].endswith("| met |")
    assert rows["web CPU per usage report"].endswith("| met |") and "0.90 ms" in rows["web CPU per usage report"]
    assert rows["reports/s into one scan item"].endswith("| met |") and "3,000" in rows["reports/s into one scan item"]
    assert rows["new devices/s into one seat item"].endswith("| not met |")  # 500 at 40,000 seats: not flat
    assert rows["statistics page, 100,000 devices / 1,000,000 reports"].endswith("| met |")
    assert rows["devices.csv, 100,000 devices"].endswith("| not met |")  # p95 650 ms
    assert rows["device search, 100,000 devices"].endswith("| met |")
    assert rows["cores for 5,600 reports/s (on paper)"].endswith("| not met |")  # 5,600 x 3 ms = 16.8 cores

"""bench_api's parts: the load generator against a real server counts what the server counts,
and the docs/benchmarks.md writer replaces only its own section."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from client.tools.loadgen import Scenario, percentile, prepare
from client.tools.management.commands import bench_api
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


def test_it_replaces_only_the_api_section(tmp_path, monkeypatch):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nIntro.\n\n## API\n\nold table\n\n## Jobs\n\njobs table\n")
    monkeypatch.setattr(bench_api, "DOC", doc)
    bench_api.Command().write_doc("| new | table |\n")
    text = doc.read_text()
    assert "old table" not in text and "| new | table |" in text
    assert text.startswith("# Benchmarks\n\nIntro.\n\n## API\n") and text.endswith("## Jobs\n\njobs table\n")

    doc.write_text("# Benchmarks\n\n## Jobs\n\njobs table\n")
    bench_api.Command().write_doc("| t |\n")
    text = doc.read_text()
    assert text.index("## Jobs") < text.index("## API") and "jobs table" in text and "| t |" in text


@pytest.mark.django_db
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

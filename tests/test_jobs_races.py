"""Two copies of a job at once (threads released by a barrier) give the same result as one run.
PostgreSQL only: it is where copies really run in parallel."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from devices import tally
from devices.models import Device
from devices.seats import recount
from licenses.clock import slot_start_of
from licenses.models import AlertRecipient
from tests import factories
from usage import jobs
from usage.models import AlertSent, ConcurrencyRollup, JobState, ReminderSent, UsageReport, UsageRollup

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

COPIES = 2


@pytest.fixture(autouse=True)
def seat_counters_match_the_devices():
    """After every race: each seat item's counter equals its active devices (devices.seats), and
    each project's tally its devices by state (devices.tally)."""
    yield
    assert recount(fix=False) == []
    assert tally.recount(fix=False) == []


def at_once(job, now, copies=COPIES):
    barrier = threading.Barrier(copies)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(job(now=now))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def test_expire_idle_devices_twice_at_once(postgres_only, now):
    item = factories.LicenseItemFactory()
    for i in range(50):
        factories.DeviceFactory(item=item, active_until=now - timedelta(seconds=i))
    factories.DeviceFactory(item=item, active_until=now + timedelta(seconds=1))

    results = at_once(jobs.expire_idle_devices, now)

    assert sum(r["expired"] for r in results) == 50
    assert Device.objects.filter(state=Device.EXPIRED).count() == 50


def test_rollups_twice_at_once_equal_one_run(postgres_only, now):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=3)
    scans = factories.LicenseItemFactory(per_barcode_scan=True, quantity=10_000)
    base = slot_start_of(now) - timedelta(hours=3)
    for k in range(30):
        s = base + timedelta(minutes=3 * k)
        for _ in range(k % 4 + 1):
            factories.UsageReportFactory(
                device=factories.DeviceFactory(item=item), slot_start=s, counted={"barcode_scans": 1}
            )
        factories.UsageReportFactory(
            device=factories.DeviceFactory(item=scans), slot_start=s, counted={"barcode_scans": k}
        )

    at_once(jobs.rollup_concurrency, now)
    at_once(jobs.rollup_usage, now)
    concurrent = list(ConcurrencyRollup.objects.order_by("slot_start").values_list("slot_start", "active_devices"))
    usage = list(
        UsageRollup.objects.order_by("granularity", "bucket_start", "metric").values_list(
            "item", "granularity", "bucket_start", "count"
        )
    )

    # One run from scratch gives the same rows.
    ConcurrencyRollup.objects.all().delete()
    UsageRollup.objects.all().delete()
    JobState.objects.all().delete()
    jobs.rollup_concurrency(now=now)
    jobs.rollup_usage(now=now)
    assert len(concurrent) == 30 and [n for _, n in concurrent] == [k % 4 + 1 for k in range(30)]
    assert concurrent == list(
        ConcurrencyRollup.objects.order_by("slot_start").values_list("slot_start", "active_devices")
    )
    assert usage == list(
        UsageRollup.objects.order_by("granularity", "bucket_start", "metric").values_list(
            "item", "granularity", "bucket_start", "count"
        )
    )
    assert sum(c for i, g, _, c in usage if g == "day" and i == scans.pk) == sum(range(30))


def test_send_usage_alerts_twice_at_once_sends_one_email(postgres_only, now):
    org = factories.OrganizationFactory()
    AlertRecipient.objects.create(organization=org, email="ops@x.test")
    lic = factories.LicenseFactory(organization=org)
    for _ in range(5):
        factories.QuotaCounterFactory(
            item=factories.LicenseItemFactory(per_barcode_scan=True, quantity=10, license=lic),
            metric="barcode_scans",
            used=10,
        )

    results = at_once(jobs.send_usage_alerts, now)

    assert sum(r["emails"] for r in results) == 1
    assert len(mail.outbox) == 1 and mail.outbox[0].body.count("past the 100 % threshold") == 5
    assert AlertSent.objects.count() == 15


def test_send_renewal_reminders_twice_at_once_sends_each_once(postgres_only, now):
    for _ in range(4):
        lic = factories.LicenseFactory(starts_at=now - timedelta(days=300), expires_at=now + timedelta(days=7, hours=1))
        AlertRecipient.objects.create(organization=lic.organization, email="billing@x.test")

    results = at_once(jobs.send_renewal_reminders, now)

    assert sum(r["emails"] for r in results) == 4
    assert len(mail.outbox) == 4 and ReminderSent.objects.count() == 4


def test_purge_old_data_twice_at_once(postgres_only, now):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    dev = factories.DeviceFactory(item=item)
    old = now - timedelta(days=500)
    for i in range(25):
        factories.UsageReportFactory(
            device=dev,
            slot_start=slot_start_of(old),
            received_at=old + timedelta(seconds=i),
            counted={"barcode_scans": 1},
        )
    factories.UsageReportFactory(
        device=dev, slot_start=slot_start_of(now), received_at=now, counted={"barcode_scans": 1}
    )

    results = at_once(lambda now: jobs.purge_old_data(now=now, batch=4), now)

    assert sum(r["usagereport"] for r in results) == 25
    assert UsageReport.objects.count() == 1

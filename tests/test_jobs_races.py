"""Two copies of a job at once (threads released by a barrier) give the same result as one run.
PostgreSQL only: it is where copies really run in parallel."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from devices.models import Device
from licenses.models import AlertRecipient
from tests import factories
from tests import factories_jobs as fj
from usage import jobs
from usage.models import AlertSent, ConcurrencyRollup, JobState, ReminderSent, UsageReport, UsageRollup

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

COPIES = 2


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
    item = factories.item()
    for i in range(50):
        fj.device(item, active_until=now - timedelta(seconds=i))
    fj.device(item, active_until=now + timedelta(seconds=1))

    results = at_once(jobs.expire_idle_devices, now)

    assert sum(r["expired"] for r in results) == 50
    assert Device.objects.filter(state=Device.EXPIRED).count() == 50


def test_rollups_twice_at_once_equal_one_run(postgres_only, now):
    item = factories.item(option="per_concurrent_device", quantity=3)
    scans = factories.item(option="per_barcode_scan", quantity=10_000)
    base = fj.slot(now) - timedelta(hours=3)
    for k in range(30):
        s = base + timedelta(minutes=3 * k)
        for _ in range(k % 4 + 1):
            fj.report(fj.device(item), slot_start=s, counts={"barcode_scans": 1})
        fj.report(fj.device(scans), slot_start=s, counts={"barcode_scans": k})

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
    org = factories.org()
    AlertRecipient.objects.create(organization=org, email="ops@x.test")
    lic = factories.license(organization=org)
    for _ in range(5):
        fj.counter(factories.item(option="per_barcode_scan", quantity=10, license=lic), "barcode_scans", 10)

    results = at_once(jobs.send_usage_alerts, now)

    assert sum(r["emails"] for r in results) == 1
    assert len(mail.outbox) == 1 and mail.outbox[0].body.count("past the 100 % threshold") == 5
    assert AlertSent.objects.count() == 15


def test_send_renewal_reminders_twice_at_once_sends_each_once(postgres_only, now):
    for _ in range(4):
        lic = factories.license(starts_at=now - timedelta(days=300), expires_at=now + timedelta(days=7, hours=1))
        AlertRecipient.objects.create(organization=lic.organization, email="billing@x.test")

    results = at_once(jobs.send_renewal_reminders, now)

    assert sum(r["emails"] for r in results) == 4
    assert len(mail.outbox) == 4 and ReminderSent.objects.count() == 4


def test_purge_old_data_twice_at_once(postgres_only, now):
    item = factories.item(option="per_barcode_scan", quantity=100)
    dev = fj.device(item)
    old = now - timedelta(days=500)
    for i in range(25):
        fj.report(dev, slot_start=fj.slot(old), received_at=old + timedelta(seconds=i), counts={"barcode_scans": 1})
    fj.report(dev, slot_start=fj.slot(now), received_at=now, counts={"barcode_scans": 1})

    results = at_once(lambda now: jobs.purge_old_data(now=now, batch=4), now)

    assert sum(r["usagereport"] for r in results) == 25
    assert UsageReport.objects.count() == 1

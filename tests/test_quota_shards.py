"""Quota counters split into shares (``devices.quota``): every report is decided as on one exact
counter (SPEC section 4: the total including itself), whatever share it adds to; the shares'
headroom never sums past the limit; a limit changed by staff is honoured at the next report; the
reports of one hot item lock one share each, not one row.

The sequential tests compare every answer with a model of the single counter (the running total
and ``quota_verdict``, the rule's home); the race hammers one item from many threads on
PostgreSQL across its limit and counts the allowed reports exactly."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client

from devices import quota
from devices.models import Device, QuotaCounter, QuotaShard
from devices.verdicts import quota_limits, quota_verdict
from tests import factories
from tests.factories import NOW, SLOT, post, report, usage_body
from tests.quota import quota_used

pytestmark = [pytest.mark.usefixtures("no_rate_limits", "frozen")]


def devices_of(item, n: int) -> list[Device]:
    until = SLOT + timedelta(days=3)
    return Device.objects.bulk_create(
        Device(project=item.project, device_uuid=f"q-{i}", item=item, client_type="desktop", state="active",
               first_authorized_at=NOW, authorized_at=NOW, last_seen_at=NOW, active_until=until)
        for i in range(n)
    )  # fmt: skip


def headroom_holds(item) -> None:
    """The counter and the allotments of its live shares stay below the limit."""
    for metric, limit in quota_limits(item).items():
        base = QuotaCounter.objects.filter(item=item, metric=metric).values_list("used", flat=True).first() or 0
        shares = QuotaShard.objects.filter(item=item, metric=metric, granted_limit=limit, exhausted=False)
        granted = sum(s.allot for s in shares)
        assert all(s.used <= s.allot for s in shares)
        if shares:
            assert base + granted <= limit - 1, (metric, base, granted, limit)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_scan_report_is_decided_on_the_exact_total_including_itself(client, seed):
    rng = random.Random(seed)
    item = factories.LicenseItemFactory(
        per_barcode_scan=True, quantity=rng.choice([60, 150, 400]), quota_grace_percent=5
    )
    devices = devices_of(item, 40)
    total = 0
    for k in range(160):
        if k == 90:  # staff adds quota: the shares granted under the old limit are not used again
            item.quantity += 100
            item.save()
        n = rng.randint(1, 6)
        device = rng.choice(devices)
        body = report(client, item.project, device.device_uuid, f"r{k}", barcode_scans=n).json()
        total += n
        expected = quota_verdict(item, {"barcode_scans": total})
        assert body["allowed"] is expected.allowed, (k, total, body)
        assert quota_used(item) == total
        headroom_holds(item)
    assert QuotaShard.objects.filter(item=item).count() == quota.SHARDS  # the shares were used


@pytest.mark.django_db(transaction=True)
def test_each_page_report_is_decided_on_the_exact_totals_of_its_modules(client):
    rng = random.Random(9)
    item = factories.LicenseItemFactory(per_page=True, product="dwt", quantities={"core": 120, "ocr": 60})
    devices = devices_of(item, 20)
    totals = {"pages_core": 0, "pages_ocr": 0}
    for k in range(120):
        pages = {m: rng.randint(1, 4) for m in rng.sample(["core", "ocr"], rng.randint(1, 2))}
        device = rng.choice(devices)
        body = report(client, item.project, device.device_uuid, f"p{k}", pages=pages).json()
        for m, n in pages.items():
            totals[f"pages_{m}"] += n
        expected = quota_verdict(item, totals, modules=set(pages))
        assert body["allowed"] is expected.allowed, (k, totals, pages, body)
        assert quota.values(item.pk) == totals
        headroom_holds(item)


@pytest.mark.django_db(transaction=True)
def test_far_from_the_limit_a_report_adds_to_its_share_only(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=10**6)
    a, b = devices_of(item, 2)
    report(client, item.project, a.device_uuid, "warm", barcode_scans=1)  # makes the shares
    base = QuotaCounter.objects.get(item=item, metric="barcode_scans").used
    report(client, item.project, a.device_uuid, "r1", barcode_scans=4)
    report(client, item.project, b.device_uuid, "r2", barcode_scans=5)
    assert QuotaCounter.objects.get(item=item, metric="barcode_scans").used == base  # not locked, not moved
    used = dict(QuotaShard.objects.filter(item=item).values_list("shard", "used"))
    assert used[quota.shard_of(a.pk)] == 4 and used[quota.shard_of(b.pk)] == 5
    assert quota_used(item) == 10


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_simultaneous_reports_across_the_limit_allow_exactly_the_reports_below_it(postgres_only):
    """40 threads x 6 reports of one scan into quantity 200: the totals 1..240 in some order,
    refused from 200 on: exactly 199 allowed, every time, the counter exact."""
    threads, each = 40, 6
    for run in range(3):
        item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=200, quota_grace_percent=0)
        devices = devices_of(item, threads)
        barrier = threading.Barrier(threads)

        def one(device, barrier=barrier, item=item):
            try:
                client = Client()
                barrier.wait(timeout=30)
                out = []
                for k in range(each):
                    response = post(
                        client, "usage", usage_body(item.project, device.device_uuid, f"x{k}", barcode_scans=1)
                    )
                    out.append((response.status_code, response.json()))
                return out
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = [r for rs in pool.map(one, devices) for r in rs]
        assert Counter(status for status, _ in results) == Counter({200: threads * each}), results[:3]
        allowed = Counter(body["allowed"] for _, body in results)
        assert allowed == Counter({True: 199, False: threads * each - 199}), (run, allowed)
        assert quota_used(item) == threads * each
        headroom_holds(item)


@pytest.mark.django_db(transaction=True)
def test_a_changed_limit_is_honoured_at_the_next_report(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100, quota_grace_percent=0)
    (device,) = devices_of(item, 1)
    assert report(client, item.project, device.device_uuid, "a", barcode_scans=100).json()["allowed"] is False
    assert report(client, item.project, device.device_uuid, "b", barcode_scans=1).json()["allowed"] is False
    item.quantity = 1000  # quota added: the exhausted shares were granted under the old limit
    item.save()
    assert report(client, item.project, device.device_uuid, "c", barcode_scans=1).json()["allowed"] is True
    item.quantity = 105  # lowered below what the shares were granted: 102 used, refused from 105
    item.save()
    assert report(client, item.project, device.device_uuid, "d", barcode_scans=2).json()["allowed"] is True  # 104
    assert report(client, item.project, device.device_uuid, "e", barcode_scans=1).json()["allowed"] is False  # 105
    assert quota_used(item) == 105
    headroom_holds(item)

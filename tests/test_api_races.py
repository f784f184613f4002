"""Limits under simultaneous requests, with real connections from threads (PostgreSQL with
DATABASE_URL; the embedded SQLite default otherwise): seats
never overshoot (10 seats + grace: exactly 11), servers stop at the quantity, a concurrent-device
slot stops at its ceiling, and a report retried at the same moment counts once.

Each race starts its threads on a barrier, so the requests really arrive together, and is
repeated; every thread closes its own connection. ``RACE_RUNS`` sets the repeats."""

from __future__ import annotations

import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client

from devices import tally
from devices.models import Device
from devices.seats import recount
from tests import factories
from tests.factories import NOW, SLOT, auth_body, post, usage_body
from tests.quota import quota_used
from usage.models import SlotDevice, UsageCount, UsageReport

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_rate_limits", "frozen"),
    pytest.mark.slow,
]

# SQLite serializes writers with a sleeping busy handler: slow, so fewer repeats there.
RUNS = int(os.environ.get("RACE_RUNS", "10" if connection.vendor == "postgresql" else "2"))
THREADS = 50


@pytest.fixture(autouse=True)
def seat_counters_match_the_devices():
    """After every race: each seat item's counter equals its active devices (devices.seats), and
    each project's tally its devices by state (devices.tally)."""
    yield
    assert recount(fix=False) == []
    assert tally.recount(fix=False) == []


def race(bodies: list[tuple[str, dict]]) -> list[tuple[int, dict]]:
    """POST every (path, body) from its own thread and connection, all released at once."""
    barrier = threading.Barrier(len(bodies))

    def one(path_body):
        path, body = path_body
        try:
            client = Client()
            barrier.wait(timeout=30)
            response = post(client, path, body)
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))


def authorized_devices(item, uuids: list[str]) -> list[Device]:
    """Devices as authorize leaves them (faster than 50 authorizations per run)."""
    until = SLOT + timedelta(seconds=360)
    return [
        Device(project=item.project, device_uuid=uuid, item=item, client_type="desktop", state="active",
               first_authorized_at=NOW, authorized_at=NOW, last_seen_at=NOW, active_until=until)
        for uuid in uuids
    ]  # fmt: skip


def outcome(results) -> Counter:
    return Counter(status if status == 200 else body["error"]["code"] for status, body in results)


def test_it_never_gives_an_eleventh_seat_plus_one():
    overshoots = 0
    for run in range(RUNS):
        item = factories.LicenseItemFactory(quantity=10, device_grace_percent=10)
        bodies = [("authorize", auth_body(item.project, f"r{run}-d{i}")) for i in range(THREADS)]
        got = outcome(race(bodies))
        active = Device.objects.filter(item=item, state="active").count()
        overshoots += active > 11
        assert got == Counter({200: 11, 120: THREADS - 11}), got
        assert active == 11
    assert overshoots == 0
    print(f"\nseat race: {RUNS} runs x {THREADS} devices, 10 seats + grace 1, overshoots {overshoots}")


def test_one_new_device_authorizing_many_times_at_once_takes_one_seat():
    for run in range(RUNS):
        item = factories.LicenseItemFactory(quantity=10, device_grace_percent=10)
        Device.objects.bulk_create(authorized_devices(item, [f"r{run}-other{i}" for i in range(10)]))
        got = outcome(race([("authorize", auth_body(item.project, f"r{run}-same"))] * 20))
        assert got == Counter({200: 20}), got  # the last seat, taken once, kept by every retry
        assert Device.objects.filter(item=item, state="active").count() == 11


def test_it_never_admits_a_server_over_the_quantity():
    for run in range(RUNS):
        item = factories.LicenseItemFactory(per_server=True, quantity=10)
        bodies = [
            ("authorize", auth_body(item.project, f"r{run}-s{i}", edition="server", client_type="server"))
            for i in range(THREADS)
        ]
        got = outcome(race(bodies))
        assert got == Counter({200: 10, 120: THREADS - 10}), got
        assert Device.objects.filter(item=item, state="active").count() == 10
    print(f"\nserver race: {RUNS} runs x {THREADS} servers, quantity 10, overshoots 0")


def test_a_concurrency_slot_stops_at_its_ceiling():
    for run in range(RUNS):
        item = factories.LicenseItemFactory(per_concurrent_device=True, product="dlr", quantity=10, overuse_percent=20)
        uuids = [f"r{run}-c{i}" for i in range(THREADS)]
        Device.objects.bulk_create(authorized_devices(item, uuids))
        bodies = [("usage", usage_body(item.project, uuid, "rep-1", barcode_scans=1)) for uuid in uuids]
        results = race(bodies)
        allowed = Counter(body["allowed"] for _, body in results)
        assert allowed == Counter({True: 12, False: THREADS - 12}), allowed
        assert SlotDevice.objects.filter(item=item, slot_start=SLOT).count() == 12
        assert SlotDevice.objects.filter(item=item, slot_start=SLOT, overuse=True).count() == 2
        assert quota_used(item, "overuse_spent") == 2
        assert UsageReport.objects.filter(item=item).count() == THREADS  # every report recorded
    print(f"\nconcurrency race: {RUNS} runs x {THREADS} devices, quantity 10, ceiling 12, overshoots 0")


def test_a_quota_reached_by_simultaneous_reports_refuses_exactly_the_reports_past_it():
    for run in range(RUNS):
        item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=40, quota_grace_percent=0)
        uuids = [f"r{run}-q{i}" for i in range(THREADS)]
        Device.objects.bulk_create(authorized_devices(item, uuids))
        results = race([("usage", usage_body(item.project, uuid, "rep-1", barcode_scans=1)) for uuid in uuids])
        allowed = Counter(body["allowed"] for _, body in results)
        # Each report sees the total including itself: totals 1..50, refused from 40 on.
        assert allowed == Counter({True: 39, False: THREADS - 39}), allowed
        assert quota_used(item, "barcode_scans") == THREADS
    print(f"\nquota race: {RUNS} runs x {THREADS} reports, quantity 40, 39 allowed every time")


def test_the_same_report_sent_at_once_counts_once():
    for run in range(RUNS):
        item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100_000)
        assert post(Client(), "authorize", auth_body(item.project, f"r{run}")).status_code == 200
        body = usage_body(item.project, f"r{run}", "same", barcode_scans=7)
        results = race([("usage", body)] * 20)
        statuses = Counter(b["status"] for _, b in results)
        assert statuses == Counter({"accepted": 1, "duplicate": 19}), statuses
        assert quota_used(item, "barcode_scans") == 7
        assert UsageCount.objects.filter(item=item).count() == 1
    print(f"\nidempotency race: {RUNS} runs x 20 retries, counted once every time")

"""Seat counters split into shares (``devices.seats``): new devices far from the ceiling take
their seat from their share without the counter row, the shares' grants never sum past the
ceiling, a ceiling changed by staff is honoured at the next seat, releases and the expiry job
keep the total equal to the live devices, and on PostgreSQL many simultaneous new devices take
exactly the ceiling."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from devices.models import Device, SeatCounter, SeatShare
from devices.seats import SHARDS, recount, shard_of
from tests import factories
from tests.factories import auth_body, authorize, post, release

pytestmark = [pytest.mark.usefixtures("no_rate_limits", "frozen")]


def grants_hold(item) -> None:
    """The counter and its live shares' grants stay within the ceiling; the total is exact."""
    ceiling = item.seat_ceiling
    base = SeatCounter.objects.get(item=item).active
    shares = SeatShare.objects.filter(item=item, granted_ceiling=ceiling)
    assert all(s.active <= s.allot for s in shares)
    granted = sum(s.allot for s in shares)
    if granted:  # (none granted once the devices fill the ceiling, or more after it was lowered)
        assert base + granted <= ceiling
    assert recount(fix=False) == []  # counter + shares == active devices


@pytest.mark.django_db(transaction=True)
def test_random_authorizations_and_releases_keep_the_ceiling_and_the_count(client):
    rng = random.Random(5)
    item = factories.LicenseItemFactory(quantity=60, device_grace_percent=0)
    holding: set[str] = set()
    for k in range(220):
        if k == 150:  # staff lowers the quantity: shares granted under the old ceiling are not used
            item.quantity = 40
            item.save()
        if holding and rng.random() < 0.3:
            uuid = rng.choice(sorted(holding))
            assert release(client, item.project, uuid).status_code == 200
            holding.discard(uuid)
        else:
            uuid = f"d{k}"
            response = authorize(client, item.project, uuid)
            expected = len(holding) < item.seat_ceiling
            assert (response.status_code == 200) is expected, (k, len(holding), response.json())
            if expected:
                holding.add(uuid)
        assert Device.objects.filter(item=item, state="active").count() == len(holding)
        grants_hold(item)


@pytest.mark.django_db(transaction=True)
def test_far_from_the_ceiling_a_new_device_takes_its_share_only(client):
    item = factories.LicenseItemFactory(quantity=10_000)
    assert authorize(client, item.project, "warm").status_code == 200  # counter and shares made
    base = SeatCounter.objects.get(item=item).active
    assert authorize(client, item.project, "a").status_code == 200
    assert authorize(client, item.project, "b").status_code == 200
    assert SeatCounter.objects.get(item=item).active == base  # not locked, not moved
    active = dict(SeatShare.objects.filter(item=item).values_list("shard", "active"))
    assert len(active) == SHARDS and sum(active.values()) == 2
    assert active[shard_of("a")] >= 1 and active[shard_of("b")] >= 1
    grants_hold(item)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_simultaneous_new_devices_take_exactly_the_ceiling(postgres_only):
    """40 threads x 4 new devices onto 100 seats (no grace): exactly 100 taken, every time."""
    threads, each = 40, 4
    for run in range(3):
        item = factories.LicenseItemFactory(quantity=100, device_grace_percent=0)
        assert post(Client(), "authorize", auth_body(item.project, f"warm-{run}")).status_code == 200
        barrier = threading.Barrier(threads)

        def one(t, barrier=barrier, item=item, run=run):
            try:
                client = Client()
                barrier.wait(timeout=30)
                return [
                    post(client, "authorize", auth_body(item.project, f"r{run}-t{t}-{k}")).status_code
                    for k in range(each)
                ]
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=threads) as pool:
            statuses = Counter(s for ss in pool.map(one, range(threads)) for s in ss)
        assert statuses == Counter({200: 99, 403: threads * each - 99}), (run, statuses)
        assert Device.objects.filter(item=item, state="active").count() == 100
        grants_hold(item)


@pytest.mark.django_db(transaction=True)
def test_a_lowered_ceiling_is_honoured_at_the_next_new_device(client):
    item = factories.LicenseItemFactory(quantity=1000, device_grace_percent=0)
    for uuid in ("a", "b", "c"):
        assert authorize(client, item.project, uuid).status_code == 200  # the shares hold seats to spare
    item.quantity = 3
    item.save()
    assert authorize(client, item.project, "d").status_code == 403
    assert authorize(client, item.project, "a").status_code == 200  # a device holding its seat keeps it
    item.quantity = 5
    item.save()
    assert authorize(client, item.project, "d").status_code == 200
    grants_hold(item)

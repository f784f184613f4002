"""Seat burn read as plain rows (devices/seat_burn.py: times in microseconds, the latest address,
model instances only for a group that is shown) gives the groups of the definition: the devices
loaded as model instances with their latest address and chained as the SPEC-side definition in
tests/test_seat_burn_chains.py chains them. On random histories in the database, with decisions
that recorded an address or none, so both the SQLite and the PostgreSQL path are compared. The
seat-burn page shows GROUPS_PER_PAGE groups, counts them all, and releases a group by its index
in the whole list."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import OuterRef, Subquery

from devices.models import Decision, Device
from devices.seat_burn import _SIGNATURE, burn_groups, seats_burned
from devices.seats import SEAT_OPTIONS
from portal.views import insight
from tests import factories
from tests.factories import MODEL_BACKEND, NOW, world
from tests.test_seat_burn_chains import _by_definition

pytestmark = pytest.mark.django_db


def _history(seed: int, n: int = 160):
    rnd = random.Random(seed)
    seats = factories.LicenseItemFactory(per_client_device=True, edition="javascript", quantity=1000)
    project = seats.project
    server = factories.LicenseItemFactory(per_server=True, project=project, license=seats.license, quantity=1000)
    scans = factories.LicenseItemFactory(per_barcode_scan=True, project=project, license=seats.license)
    for i in range(n):
        first = NOW - timedelta(days=20) + timedelta(hours=rnd.randrange(0, 24 * 18), microseconds=rnd.randrange(10**6))
        last = first + timedelta(hours=rnd.choice([0, 1, 5, 30, 200]), microseconds=rnd.randrange(10**6))
        device = factories.DeviceFactory(
            item=rnd.choice([seats, seats, server, scans]), project=project, client_type="web",
            device_uuid=f"r{i}", origin=rnd.choice(["", "https://a.example", "https://b.example"]),
            platform=rnd.choice(["Chrome", ""]), sdk_version="10.4", device_name=rnd.choice(["", "desk", f"n{i}"]),
            user_agent=rnd.choice(["", "UA-1", "UA-2"]), state=rnd.choice(["active", "active", "expired", "released"]),
            first_authorized_at=first, last_seen_at=last,
            active_until=NOW + timedelta(minutes=rnd.choice([-30, 30, 600])),
        )  # fmt: skip
        for k in range(rnd.choice([0, 1, 3])):
            address = rnd.choice([None, "192.0.2.7", "2001:db8::1", "198.51.100.1"])
            factories.DecisionFactory(device=device, now=first + timedelta(minutes=k), client_address=address)
    return project


def _definition(project, now):
    """The groups as the seat-burn rule defines them, from model instances."""
    latest = Decision.objects.filter(device=OuterRef("pk")).exclude(client_address=None).order_by("-created_at")
    devices = list(
        Device.objects.filter(project=project, item__option__in=SEAT_OPTIONS)
        .exclude(origin="", device_name="", user_agent="")
        .annotate(address=Subquery(latest.values("client_address")[:1]))
        .order_by("first_authorized_at", "pk")
    )
    groups = []
    for key, found in _by_definition(devices, timedelta(hours=settings.SEAT_BURN_GAP_HOURS)).items():
        for chain in found:
            if len(chain) > 1:
                signature = {n: "" if v is None else str(v) for n, v in zip(_SIGNATURE, key, strict=True)}
                signature.update(device_name=chain[-1].device_name, user_agent=chain[-1].user_agent)
                burned = [d.pk for d in chain[:-1] if d.holds_seat(now)]
                held = sum(1 for d in chain if d.holds_seat(now))
                groups.append((signature, chain, burned, held))
    groups.sort(key=lambda g: (-len(g[2]), -len(g[1]), g[1][0].first_authorized_at))
    return [
        (
            s,
            [(d.pk, d.device_uuid, d.state, d.first_authorized_at, d.last_seen_at, d.active_until) for d in chain],
            b,
            h,
        )
        for s, chain, b, h in groups
    ]


def _read(project, now):
    return [
        (
            g.signature,
            [(d.pk, d.device_uuid, d.state, d.first_authorized_at, d.last_seen_at, d.active_until) for d in g.devices],
            [d.pk for d in g.burned],
            g.seats_held,
        )
        for g in burn_groups(project, now=now)
    ]


@pytest.mark.parametrize("seed", range(6))
def test_the_groups_read_from_rows_are_the_definitions(seed):
    project = _history(seed)
    expected = _definition(project, NOW)
    assert len(expected) > 3  # the histories do group
    assert _read(project, NOW) == expected
    groups = burn_groups(project, now=NOW)
    assert [g.burned_count for g in groups] == [len(g.burned) for g in groups]
    assert seats_burned(project, now=NOW) == sum(len(b) for _, _, b, _ in expected)


@pytest.mark.usefixtures("frozen")
def test_the_page_shows_a_page_of_groups_counts_all_and_releases_by_index(client, monkeypatch):
    w = world(NOW)
    monkeypatch.setattr(insight, "GROUPS_PER_PAGE", 2)
    for client_no in range(5):  # five clients, each two UUIDs: the older one holds a burned seat
        for k in range(2):
            first = NOW - timedelta(hours=30 - 10 * k - client_no)
            factories.DeviceFactory(
                item=w.seats, now=NOW, client_type="web", origin="https://app.acme.example",
                device_name=f"kiosk {client_no}", device_uuid=f"k{client_no}-{k}", first_authorized_at=first,
                last_seen_at=first + timedelta(hours=1), active_until=NOW + timedelta(days=1),
            )  # fmt: skip
    client.force_login(w.owner, backend=MODEL_BACKEND)
    url = f"/projects/{w.project.pk}/seat-burn/"
    groups = burn_groups(w.project, now=NOW)
    assert len(groups) == 5
    pages = [client.get(url, {"page": n}) for n in (1, 2, 3)]
    shown = [[i for i, _ in page.context["groups"]] for page in pages]
    assert shown == [[0, 1], [2, 3], [4]]
    for page in pages:
        assert page.context["burned"] == 5 and b'id="seats-burned">5 seats burned' in page.content
    assert b'value="4"' in pages[2].content and b"Page 3 of 3" in pages[2].content
    last = groups[4].burned[0].device_uuid
    done = client.post(url, {"group": "4", "confirm": "yes"})
    assert done.status_code == 302
    assert Device.objects.get(project=w.project, device_uuid=last).state == Device.RELEASED

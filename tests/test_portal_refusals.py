"""Refusals explained in words (SPEC section 10): the one sentence per recorded decision
(portal.explain), the refusals page grouped by item and rule over a period, the project page's
panel and a device's "why was it refused?" timeline."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from devices.models import Decision
from portal.explain import explain
from tests import factories
from tests.factories import MODEL_BACKEND, NOW, world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    with time_machine.travel(NOW, tick=False):
        yield world(NOW)


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", response.content.decode()))


def decision(**fields) -> Decision:
    return Decision(**{"created_at": NOW.replace(hour=14, minute=2), "allowed": False, "code": 120, **fields})


def test_it_explains_each_refusal_rule_from_its_recorded_counts():
    seats = decision(rule="seats_exhausted", counts={"active": 33, "quantity": 30, "ceiling": 33})
    assert explain(seats) == (
        "33 of 30 seats + 3 grace were taken at 2026-11-27 14:02 UTC, so this new device got no seat."
    )
    servers = decision(rule="servers_exhausted", counts={"active": 2, "quantity": 2, "ceiling": 2})
    assert explain(servers) == "2 of 2 servers were active at 2026-11-27 14:02 UTC, so no new server could start."
    quota = decision(rule="quota_exhausted", counts={"used": 105000, "quantity": 100000, "grace": 5})
    assert explain(quota) == (
        "105,000 of 100,000 barcode scans were used at 2026-11-27 14:02 UTC (devices are refused from 105,000, "
        "the quantity + 5 % grace)."
    )
    pages = decision(
        rule="pages_exhausted",
        counts={"used": {"core": 1050, "ocr": 3}, "quantity": {"core": 1000, "ocr": 100}, "grace": 5},
    )
    assert explain(pages) == "Pages used at 2026-11-27 14:02 UTC: core 1,050 of 1,000; ocr 3 of 100 (grace 5 %)."
    slot = decision(
        rule="slot_ceiling_reached",
        counts={
            "slot": "2026-11-27T14:00:00Z",
            "active": 11,
            "quantity": 10,
            "ceiling": 11,
            "budget": 10000,
            "spent": 7,
        },
    )
    assert explain(slot) == (
        "11 devices were already active in the slot starting 2026-11-27 14:00:00 UTC: the limit is 10 and the "
        "overuse ceiling 11, so this device was not counted."
    )
    budget = decision(
        rule="overuse_budget_spent",
        counts={"slot": "2026-11-27T14:00:00Z", "active": 10, "quantity": 10, "ceiling": 11, "budget": 50, "spent": 50},
    )
    assert "the overuse budget was spent (50 of 50 device-slots)" in explain(budget)
    domain = decision(
        rule="domain_mismatch",
        code=103,
        counts={"domain": "acme.example"},
        message="origin https://x.test is not in the licensed domain acme.example",
    )
    assert explain(domain).startswith(
        "At 2026-11-27 14:02 UTC the device's origin was not in the licensed domain acme.example"
    )
    expired = decision(
        rule="license_expired", code=111, counts={}, message="license L-1 expired at 2026-11-01T00:00:00Z"
    )
    assert explain(expired) == "At 2026-11-27 14:02 UTC: license L-1 expired at 2026-11-01T00:00:00Z."
    # A decision whose counts are missing still says something true.
    odd = decision(rule="seats_exhausted", counts={}, message="10 of 10 seats are taken")
    assert explain(odd) == "At 2026-11-27 14:02 UTC: 10 of 10 seats are taken."


def test_it_groups_refusals_by_item_and_rule_over_the_chosen_period(client, w):
    with time_machine.travel(NOW, tick=False):
        for k in range(3):
            factories.DecisionFactory(
                device=w.device, now=NOW, allowed=False, rule="seats_exhausted",
                counts={"active": 11, "quantity": 10, "ceiling": 11}, created_at=NOW - timedelta(hours=k + 1),
            )  # fmt: skip
        old = factories.DeviceFactory(
            item=w.seats, now=NOW, device_name="Old scanner", last_seen_at=NOW - timedelta(days=83)
        )
        factories.DecisionFactory(
            device=old, now=NOW, allowed=False, rule="quota_exhausted", item=w.scan,
            counts={"used": 10500, "quantity": 10000, "grace": 5}, created_at=NOW - timedelta(days=10),
        )  # fmt: skip
        factories.DecisionFactory(device=w.other_device, now=NOW, allowed=False, rule="seats_exhausted")
        client.force_login(w.viewer, backend=MODEL_BACKEND)
        url = reverse("portal:refusals", args=[w.project.pk])
        week = text(client.get(url))
        assert "Last 7 days: 3 refusals" in week
        assert "All seats taken" in week and "3 refusals of 1 device" in week
        assert "11 of 10 seats + 1 grace were taken at 2026-11-27 16:24 UTC" in week
        # The hint says what is true now: the device holding a seat that was seen longest ago.
        assert "the one idle longest was last seen 83 days ago" in week
        assert "Scan quota used up" not in week  # 10 days ago
        month = text(client.get(url + "?days=30"))
        assert "Last 30 days: 4 refusals" in month and "Scan quota used up" in month
        assert "10,500 of 10,000 barcode scans" in month
        only = text(client.get(url + "?days=30&rule=quota_exhausted"))
        assert "Old scanner" in only and only.count("10,500 of 10,000") == 2  # the group and its one row
        assert "Globex" not in week


def test_it_explains_a_refusal_made_through_the_api(client, w, no_rate_limits):
    """End to end: the device API refuses a device past the seat ceiling; the customer reads why."""
    with time_machine.travel(NOW, tick=False):
        project = factories.ProjectFactory(organization=w.org, name="kiosks")
        factories.LicenseItemFactory(per_client_device=True, quantity=10, project=project)
        taken = 0
        for k in range(20):
            r = factories.authorize(client, project, f"extra-{k}", product="dbr", client_type="desktop")
            if r.status_code != 200:
                break
            taken += 1
        assert r.status_code != 200
        client.force_login(w.owner, backend=MODEL_BACKEND)
        assert taken == 11
        page = text(client.get(reverse("portal:project", args=[project.pk])))
        assert "Refusals in the last 7 days" in page
        assert "11 of 10 seats + 1 grace were taken at 2026-11-27 17:24 UTC, so this new device got no seat." in page
        listed = text(client.get(reverse("portal:refusals", args=[project.pk])))
        assert f"extra-{taken}" in listed and "1 refusal of 1 device" in listed


def test_it_shows_a_devices_refusal_timeline(client, w):
    with time_machine.travel(NOW, tick=False):
        factories.DecisionFactory(
            device=w.device, now=NOW, allowed=False, rule="seats_exhausted",
            counts={"active": 11, "quantity": 10, "ceiling": 11},
        )  # fmt: skip
        client.force_login(w.viewer, backend=MODEL_BACKEND)
        page = text(client.get(reverse("portal:device", args=[w.device.pk])))
        assert "Why was this device refused?" in page
        assert "11 of 10 seats + 1 grace were taken at 2026-11-27 16:24 UTC" in page
        page = text(
            client.get(
                reverse("portal:device", args=[w.other_device.pk]).replace(str(w.other_device.pk), str(w.device.pk))
            )
        )
        client.force_login(w.owner, backend=MODEL_BACKEND)
        fresh = factories.DeviceFactory(item=w.seats, now=NOW)
        assert "This device has never been refused." in text(client.get(reverse("portal:device", args=[fresh.pk])))

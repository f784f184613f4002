"""What the customer pages show: meters with numbers and percentages, expiry, the run-out
projection, the 30-day peak, the project's key and order, devices with search, filter and
pagination, statistics, concurrency with overuse marked, and alert recipients."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from devices.models import Device
from licenses.models import AlertRecipient, AuditLog
from portal.summaries import summarize_items
from tests import factories
from tests.factories import MODEL_BACKEND, day_start, world
from usage.models import UsageRollup

pytestmark = pytest.mark.django_db
NOW = factories.NOW


@pytest.fixture
def w():
    with time_machine.travel(NOW, tick=False):
        yield world(NOW)


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_it_shows_quota_bars_with_numbers_and_percentages(client, w):
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    page = text(client.get(reverse("portal:home")))
    assert "<strong>8,500</strong> of 10,000 scans · <strong>85.0 %</strong>" in page
    assert 'aria-label="Barcode scans: 8500 of 10000 scans used, 85.0 percent"' in page
    assert 'class="fill" x="0" y="0" width="85.00"' in page
    assert "<strong>100</strong> of 100 pages · <strong>100.0 %</strong>" in page  # pages (OCR)
    assert "quota used up" in page
    assert "<strong>3</strong> of 10 seats · <strong>30.0 %</strong>" in page
    assert "<strong>1</strong> of 2 servers" in page
    assert "<strong>40</strong> of 5,000 device-slots" in page
    assert "acme.example" in page
    assert "20 days left" in page


def test_it_projects_the_day_a_quota_runs_out(w):
    # 100 scans a day over the last 7 complete days, 1,500 left: 15 days.
    scan = summarize_items([w.scan], now=NOW)[0].meters[0]
    assert scan.projection.kind == "date"
    assert scan.projection.rate_per_day == 100
    assert scan.projection.day == NOW.date() + timedelta(days=15)
    # Pages (core): 10 a day, 800 left: 80 days, past the expiry in 20 days.
    core, ocr = summarize_items([w.pages], now=NOW)[0].meters
    assert core.projection.kind == "after_expiry"
    assert ocr.projection.kind == "exhausted"


def test_it_projects_nothing_without_recent_use_and_uses_a_young_licenses_own_days(w):
    idle = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    factories.QuotaCounterFactory(item=idle, metric="barcode_scans", used=10)
    assert summarize_items([idle], now=NOW)[0].meters[0].projection.kind == "idle"
    young_license = factories.LicenseFactory(starts_at=NOW - timedelta(days=2), expires_at=NOW + timedelta(days=300))
    young = factories.LicenseItemFactory(per_barcode_scan=True, license=young_license, quantity=1000)
    factories.UsageRollupFactory(item=young, metric="barcode_scans", bucket_start=day_start(NOW, 1), count=100)
    factories.UsageRollupFactory(item=young, metric="barcode_scans", bucket_start=day_start(NOW, 2), count=100)
    projection = summarize_items([young], now=NOW)[0].meters[0].projection
    assert projection.rate_per_day == 100  # 200 over its 2 days, not over 7
    assert projection.days_left == 10


def test_it_reports_the_30_day_peak_of_seats(w):
    # The decisions of the world saw 0, 1 and 2 active; now 3 are active.
    assert summarize_items([w.seats], now=NOW)[0].peak_30d == 3
    # A decision that took a seat recorded the count before it: 6 then, 7 after.
    taken = factories.DeviceFactory(item=w.seats, now=NOW, state=Device.RELEASED)
    factories.DecisionFactory(
        device=taken, now=NOW, rule="seat_taken", counts={"active": 6, "quantity": 10, "ceiling": 11}
    )
    assert summarize_items([w.seats], now=NOW)[0].peak_30d == 7
    d = factories.DeviceFactory(item=w.seats, now=NOW, state=Device.EXPIRED)
    factories.DecisionFactory(device=d, now=NOW, allowed=False, counts={"active": 11, "quantity": 10, "ceiling": 11})
    old = factories.DeviceFactory(item=w.seats, now=NOW, state=Device.EXPIRED)
    factories.DecisionFactory(device=old, now=NOW, counts={"active": 50}, created_at=NOW - timedelta(days=31))
    assert summarize_items([w.seats], now=NOW)[0].peak_30d == 11
    # Concurrent items: the highest slot of the last 30 days from the rollups.
    assert summarize_items([w.concurrent], now=NOW)[0].peak_30d == 6


def test_it_shows_the_project_key_and_items_in_consumption_order(client, w):
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    page = text(client.get(reverse("portal:project", args=[w.project.pk])))
    assert f'value="{w.project.license_key}" readonly' in page
    assert 'data-copy-target="license-key"' in page
    ids = [int(m) for m in re.findall(r'<li class="card item" id="item-(\d+)"', page)]
    assert ids == [i.pk for i in w.project.items_in_order()]


def test_it_reorders_items_for_an_owner(client, w):
    client.force_login(w.owner, backend=MODEL_BACKEND)
    ids = [str(i.pk) for i in w.project.items_in_order()]
    new = [ids[1], ids[0], *ids[2:]]
    response = client.post(reverse("portal:project_reorder", args=[w.project.pk]), {"item_ids": new})
    assert response.status_code == 302
    assert [str(i.pk) for i in w.project.items_in_order()] == new
    page = text(client.get(reverse("portal:project", args=[w.project.pk])))
    assert "Consumption order saved." in page
    # The up/down forms carry the whole new order.
    assert re.findall(r'<li class="card item" id="item-(\d+)"', page) == new


def test_it_refuses_a_reorder_that_does_not_list_every_item_once(client, w):
    client.force_login(w.owner, backend=MODEL_BACKEND)
    ids = [str(i.pk) for i in w.project.items_in_order()]
    url = reverse("portal:project_reorder", args=[w.project.pk])
    for bad in (ids[:-1], [*ids, ids[0]], [*ids[:-1], "abc"]):
        assert client.post(url, {"item_ids": bad}).status_code == 400
    assert [str(i.pk) for i in w.project.items_in_order()] == ids


def test_it_searches_filters_and_paginates_devices(client, w):
    for k in range(60):
        factories.DeviceFactory(
            item=w.seats, now=NOW, device_name=f"Tablet {k:02d}", last_seen_at=NOW - timedelta(hours=k + 1)
        )
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    url = reverse("portal:devices", args=[w.project.pk])
    page = text(client.get(url))
    assert "Page 1 of 2" in page
    assert "Tablet 00" in page and "Tablet 59" not in page
    page2 = text(client.get(url + "?page=2"))
    assert "Tablet 59" in page2
    found = text(client.get(url + "?q=front+desk+1"))
    assert "Front desk 1" in found and "Tablet" not in found and "Front desk 2" not in found
    expired = text(client.get(url + "?state=expired"))
    assert "Tablet" not in expired and "badge-expired" in expired and "badge-active" not in expired
    servers = text(client.get(url + "?kind=servers"))
    assert "app-server-1" in servers and "Front desk" not in servers
    # A device past active_until counts as expired before the expiry job marks it.
    late = factories.DeviceFactory(
        item=w.seats, now=NOW, device_name="Late one", active_until=NOW - timedelta(seconds=1)
    )
    assert "Late one" in text(client.get(url + "?state=expired"))
    assert "Late one" not in text(client.get(url + "?state=active"))
    assert late.state == Device.ACTIVE


def test_it_releases_a_seat_for_an_owner(client, w):
    client.force_login(w.owner, backend=MODEL_BACKEND)
    url = reverse("portal:device_release", args=[w.device.pk])
    # First the confirmation, which says what it will do and changes nothing.
    page = text(client.get(url))
    assert "This frees the seat that" in page and "Front desk 0</strong> holds on item" in page
    assert client.post(url, {"next": "/"}).status_code == 200  # no confirm: asks again
    w.device.refresh_from_db()
    assert w.device.state == Device.ACTIVE
    response = client.post(url, {"confirm": "yes", "next": reverse("portal:devices", args=[w.project.pk])})
    assert response.status_code == 302 and response["Location"] == reverse("portal:devices", args=[w.project.pk])
    w.device.refresh_from_db()
    assert w.device.state == Device.RELEASED
    # Idempotent, and an outside "next" is not followed.
    response = client.post(url, {"confirm": "yes", "next": "https://evil.example/"})
    assert response["Location"] == reverse("portal:devices", args=[w.project.pk])


def test_it_shows_a_devices_own_history(client, w):
    factories.DecisionFactory(
        device=w.device, now=NOW, allowed=False, code=4, endpoint="usage", rule="seat_lost", message="re-authorize"
    )
    other = factories.DeviceFactory(item=w.seats, now=NOW)
    factories.DecisionFactory(device=other, now=NOW, rule="someone_else")
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    page = text(client.get(reverse("portal:device", args=[w.device.pk])))
    assert "Front desk 0" in page and w.device.device_uuid in page
    assert "refused 4" in page and "seat_lost" in page
    assert "reported usage after its seat had ended" in page  # the decision in words
    assert "Why was this device refused?" in page
    assert "0 of 10 seats in use" in page  # the counts at that moment
    assert "someone_else" not in page
    assert "barcode_scans 5" in page  # the latest usage report


def test_it_shows_statistics_totals_trend_two_hours_and_devices(client, w):
    factories.UsageRollupFactory(
        item=w.scan,
        metric="barcode_scans",
        bucket_start=day_start(NOW) + timedelta(hours=4),
        count=7,
        granularity=UsageRollup.TWO_HOURS,
    )
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    url = reverse("portal:statistics", args=[w.project.pk])
    page = text(client.get(url))
    # All time 8,500 (counter); last 30 days 7 x 100 + 40 today; today 40 + 7 from 2-hour rollups.
    assert re.search(
        r"Barcode scans</td><td class=\"num\">8,500</td><td class=\"num\">740</td><td class=\"num\">47<", page
    )
    assert '<svg class="chart' in page and 'role="img"' in page
    assert '<td>04:00</td><td>06:00</td><td class="num">7</td>' in page
    assert "Front desk 2" in page and ">7</td>" in page
    # A chosen period: only the last 3 days.
    page = text(client.get(url + f"?start={(NOW - timedelta(days=2)).date()}&end={NOW.date()}"))
    assert re.search(r"Barcode scans</td><td class=\"num\">8,500</td><td class=\"num\">240</td>", page)
    assert f"from={(NOW - timedelta(days=2)).date()}&amp;to={(NOW + timedelta(days=1)).date()}" in page
    # A bad period is reported, not a 500.
    response = client.get(url + "?start=2026-11-20&end=2026-11-01")
    assert response.status_code == 200 and "must end on or after" in text(response)


def test_it_marks_overuse_per_slot_against_the_limit(client, w):
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    page = text(client.get(reverse("portal:concurrency", args=[w.project.pk])))
    assert (
        '00:06–00:09</td><td class="num">6</td><td class="num">5</td><td class="num">1</td><td><strong class="bad">Overuse'
        in page
    )
    assert '00:00–00:03</td><td class="num">4</td><td class="num">5</td><td class="num">0</td><td>within limit' in page
    assert 'class="bar over"' in page and 'class="limit"' in page
    assert "40 of 5,000" in page
    empty = text(client.get(reverse("portal:concurrency", args=[w.project.pk]) + "?day=2026-01-01"))
    assert "No active devices on this day." in empty


def test_it_lets_an_owner_edit_alert_recipients(client, w):
    client.force_login(w.owner, backend=MODEL_BACKEND)
    url = reverse("portal:alert_recipients", args=[w.org.pk])
    page = text(client.get(url))
    assert "they go to the owners: owner@acme.example" in page
    assert client.post(url, {"email": "Ops@Acme.example"}).status_code == 302
    assert list(AlertRecipient.objects.filter(organization=w.org).values_list("email", flat=True)) == [
        "ops@acme.example"
    ]
    duplicate = client.post(url, {"email": "ops@acme.example"})
    assert duplicate.status_code == 400 and "already receives" in text(duplicate)
    assert client.post(url, {"email": "not an email"}).status_code == 400
    recipient = AlertRecipient.objects.get(organization=w.org)
    assert AuditLog.objects.filter(action="alert_recipient_add", object_id=str(recipient.pk)).exists()
    client.post(reverse("portal:alert_recipient_delete", args=[w.org.pk, recipient.pk]))
    assert not AlertRecipient.objects.filter(organization=w.org).exists()


def test_it_sends_staff_without_organization_to_their_dashboard(client, w):
    client.force_login(w.staff, backend=MODEL_BACKEND)
    response = client.get(reverse("portal:home"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:staff_dashboard")
    nobody = factories.UserFactory(username="nobody")
    client.force_login(nobody, backend=MODEL_BACKEND)
    assert "not a member of any organization" in text(client.get(reverse("portal:home")))


def test_statistics_all_time_counts_usage_of_every_option(client, w):
    """A seat, server, domain or concurrent item has no quota counter: its all-time figure is its
    reported usage from the day rollups, not 0."""
    for item, n in ((w.seats, 1234), (w.concurrent, 55)):
        for days_ago in (200, 3):
            factories.UsageRollupFactory(
                item=item,
                metric="barcode_scans",
                bucket_start=day_start(NOW) - timedelta(days=days_ago),
                count=n,
                granularity=UsageRollup.DAY,
            )
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    page = text(client.get(reverse("portal:statistics", args=[w.project.pk])))
    for item, n in ((w.seats, 1234), (w.concurrent, 55)):
        row = re.search(
            rf"#{item.pk} [^<]*</td><td>Barcode scans</td><td class=\"num\">([\d,]+)</td><td class=\"num\">([\d,]+)</td>",
            page,
        )
        assert row, page
        assert row.groups() == (f"{2 * n:,}", f"{n:,}")  # all time both days; the period only the recent one

"""per_client_device and per_server (SPEC section 4): seats with grace, servers without, active
time per period or heartbeat, refresh on every contact, first_use, expiry at the exact instant."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devices.models import Decision, Device
from devices.signing import verify_local_license
from devices.verdicts import seat_counts
from tests import factories
from tests.factories import NOW, SLOT, authorize, error_of, minutes, move_clock, release, report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def fill(client, item, n: int, prefix: str = "d") -> list[int]:
    return [authorize(client, item.project, f"{prefix}-{i}").status_code for i in range(n)]


@pytest.mark.parametrize("quantity, grace, admitted", [(10, 10, 11), (30, 10, 33), (1, 10, 1), (5, 0, 5), (9, 10, 9)])
def test_it_admits_seats_plus_grace_floored(client, quantity, grace, admitted):
    item = factories.LicenseItemFactory(quantity=quantity, device_grace_percent=grace)
    codes = fill(client, item, admitted + 2)
    assert codes == [200] * admitted + [403, 403]
    assert Device.objects.filter(item=item, state="active").count() == admitted


def test_it_reports_remaining_seats_without_grace(client):
    item = factories.LicenseItemFactory(quantity=10)
    bodies = [authorize(client, item.project, f"d-{i}").json() for i in range(11)]
    assert [b["remaining"]["seats"] for b in bodies] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
    refused = authorize(client, item.project, "d-11")
    assert error_of(refused)["message"] == "11 of 10 seats are taken (grace 1)"


def test_it_keeps_a_reauthorized_device_on_its_seat(client):
    item = factories.LicenseItemFactory(quantity=1, device_grace_percent=0)
    first = authorize(client, item.project, "a").json()
    move_clock(NOW + timedelta(days=1))
    again = authorize(client, item.project, "a")
    assert again.status_code == 200 and again.json()["item"] == first["item"]
    assert Device.objects.filter(item=item).count() == 1
    assert seat_counts(item, now=NOW + timedelta(days=1)) == {"active": 1, "quantity": 1, "ceiling": 1}
    assert Decision.objects.filter(device_uuid="a", rule="seats_kept").count() == 1


@pytest.mark.parametrize("period, days", [("yearly", 365), ("quarterly", 90), ("monthly", 30), ("daily", 1)])
def test_it_keeps_a_device_active_for_its_period(client, period, days):
    item = factories.LicenseItemFactory(
        period=period, license=factories.LicenseFactory(expires_at=NOW + timedelta(days=400))
    )
    body = authorize(client, item.project, "a").json()
    assert body["active_until"] == (NOW + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    claims = verify_local_license(body["local_license"], now=NOW)
    assert claims["exp"] == int((NOW + timedelta(days=days)).timestamp())
    assert claims["period_s"] == days * 86400 and claims["sub"] == "a" and claims["item"] == str(item.pk)


def test_it_caps_active_until_at_the_license_expiry(client):
    lic = factories.LicenseFactory(starts_at=NOW - timedelta(days=300), expires_at=NOW + timedelta(days=10))
    item = factories.LicenseItemFactory(license=lic)
    body = authorize(client, item.project, "a").json()
    assert body["active_until"] == "2026-12-07T17:24:00Z"


def test_every_contact_refreshes_active_until(client):
    item = factories.LicenseItemFactory(period="daily")
    authorize(client, item.project, "a")
    later = NOW + timedelta(hours=20)
    move_clock(later)
    body = report(client, item.project, "a", slot=SLOT + timedelta(hours=20)).json()
    assert body["allowed"] is True
    device = Device.objects.get(device_uuid="a")
    assert device.active_until == later + timedelta(days=1) and device.last_seen_at == later
    assert body["active_until"] == "2026-11-29T13:24:00Z"


def test_a_device_idle_past_active_until_frees_its_seat_at_that_instant(client):
    item = factories.LicenseItemFactory(quantity=1, device_grace_percent=0, period="daily")
    authorize(client, item.project, "a")
    move_clock(NOW + timedelta(days=1) - timedelta(microseconds=1))
    assert authorize(client, item.project, "b").status_code == 403  # a still holds it
    move_clock(NOW + timedelta(days=1))  # the expiry job has not run: a is still "active"
    assert Device.objects.get(device_uuid="a").state == "active"
    assert authorize(client, item.project, "b").status_code == 200


def test_a_device_that_lost_its_seat_is_told_code_4_and_still_recorded(client):
    item = factories.LicenseItemFactory(period="daily")
    authorize(client, item.project, "a")
    move_clock(NOW + timedelta(days=2))
    response = report(client, item.project, "a", slot=SLOT + timedelta(days=2), barcode_scans=5)
    body = response.json()
    assert response.status_code == 200 and body["allowed"] is False and body["error"]["code"] == 4
    assert "local_license" not in body and body["counted"]["barcode_scans"] == 5
    device = Device.objects.get(device_uuid="a")
    assert device.active_until == NOW + timedelta(days=1)  # not refreshed
    assert device.reports.get().counts.get().count == 5


def test_release_frees_the_seat_and_answers_the_same_twice(client):
    item = factories.LicenseItemFactory(quantity=1, device_grace_percent=0)
    authorize(client, item.project, "a")
    assert release(client, item.project, "a").json() == {"status": "released"}
    assert release(client, item.project, "a").json() == {"status": "released"}
    assert Device.objects.get(device_uuid="a").state == "released"
    assert authorize(client, item.project, "b").status_code == 200
    body = report(client, item.project, "a", barcode_scans=1).json()
    assert body["allowed"] is False and body["error"]["code"] == 4
    assert "was released" in body["error"]["message"]


def test_a_released_device_takes_a_seat_again_on_reauthorization(client):
    item = factories.LicenseItemFactory(quantity=1, device_grace_percent=0)
    authorize(client, item.project, "a")
    release(client, item.project, "a")
    assert authorize(client, item.project, "a").status_code == 200
    assert Device.objects.get(device_uuid="a").state == "active"
    assert authorize(client, item.project, "b").status_code == 403


def test_it_issues_first_use_licenses_valid_to_the_item_expiry(client):
    item = factories.LicenseItemFactory(activation_basis="first_use", period="monthly")
    body = authorize(client, item.project, "a").json()
    claims = verify_local_license(body["local_license"], now=NOW)
    assert claims["exp"] == int(item.license.expires_at.timestamp())
    assert claims["period_s"] == 30 * 86400
    # On the server: active until authorized_at + period until it reports usage.
    assert body["active_until"] == "2026-12-27T17:24:00Z"
    device = Device.objects.get(device_uuid="a")
    assert device.first_used_at is None
    move_clock(NOW + timedelta(days=10))
    report(client, item.project, "a", slot=SLOT + timedelta(days=10), barcode_scans=1)
    device.refresh_from_db()
    assert device.first_used_at == NOW + timedelta(days=10)
    assert device.active_until == NOW + timedelta(days=40)


# --- servers -----------------------------------------------------------------------------------


def server(client, item, uuid):
    return authorize(client, item.project, uuid, edition="server", client_type="server")


def test_it_admits_servers_up_to_the_quantity_without_grace(client):
    item = factories.LicenseItemFactory(per_server=True, quantity=2, device_grace_percent=50)
    assert [server(client, item, f"s{i}").status_code for i in range(3)] == [200, 200, 403]
    assert error_of(server(client, item, "s9")) == {
        "code": 120,
        "name": "USAGE_EXCEEDED",
        "message": "2 of 2 servers are active",
    }
    assert server(client, item, "s0").json()["remaining"] == {"servers": 0}


def test_a_server_stays_active_for_the_heartbeat_timeout(client):
    item = factories.LicenseItemFactory(per_server=True, quantity=1, heartbeat_timeout_s=600)
    body = server(client, item, "s1").json()
    assert body["active_until"] == "2026-11-27T17:34:00Z"
    move_clock(NOW + minutes(9))
    heartbeat = report(client, item.project, "s1", slot=SLOT + minutes(9)).json()  # zero counts
    assert heartbeat["allowed"] is True and heartbeat["active_until"] == "2026-11-27T17:43:00Z"
    move_clock(NOW + minutes(19) - timedelta(microseconds=1))
    assert server(client, item, "s2").status_code == 403  # s1 kept alive by the heartbeat
    move_clock(NOW + minutes(19))  # 10 minutes after its heartbeat: gone
    assert server(client, item, "s2").status_code == 200


def test_server_items_serve_only_servers_and_device_items_never_serve_servers(client):
    server_item = factories.LicenseItemFactory(per_server=True)
    assert authorize(client, server_item.project, "x", edition="server", client_type="desktop").status_code == 403
    device_item = factories.LicenseItemFactory(per_client_device=True)
    response = authorize(client, device_item.project, "x", client_type="server")
    assert error_of(response)["code"] == 104


@pytest.mark.parametrize(
    "starts, expires, code",
    [
        (NOW, NOW + timedelta(days=1), None),  # starts_at <= now: usable from its first instant
        (NOW - timedelta(days=1), NOW + timedelta(microseconds=1), None),  # its last instant
        (NOW - timedelta(days=1), NOW, 111),  # now < expires_at fails at the exact instant
        (NOW + timedelta(microseconds=1), NOW + timedelta(days=1), 112),
    ],
)
def test_a_license_term_is_half_open(client, starts, expires, code):
    item = factories.LicenseItemFactory(license=factories.LicenseFactory(starts_at=starts, expires_at=expires))
    response = authorize(client, item.project, "a")
    if code is None:
        assert response.status_code == 200
        assert Device.objects.get().active_until == min(NOW + timedelta(days=365), expires)
    else:
        assert error_of(response)["code"] == code

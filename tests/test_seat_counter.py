"""The seat counter (devices.seats) moves with every change of a device's seat: authorize,
release, the expiry job, a device moving to another item; repair_seat_counts finds and fixes
a counter that drifted. A full item expires its own run-out devices before refusing."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from devices.models import Device, SeatCounter
from devices.seats import recount
from tests import factories
from tests.factories import NOW, authorize, move_clock, release
from usage import jobs

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def counter(item) -> int:
    return SeatCounter.objects.get(item=item).active


def test_authorize_release_and_expiry_move_the_counter(client):
    item = factories.LicenseItemFactory(quantity=5, period="daily")
    for uuid in ("a", "b", "c"):
        assert authorize(client, item.project, uuid).status_code == 200
    assert counter(item) == 3
    authorize(client, item.project, "a")  # keeps its seat: no change
    assert counter(item) == 3
    release(client, item.project, "b")
    release(client, item.project, "b")  # a second release frees nothing more
    assert counter(item) == 2
    summary = jobs.expire_idle_devices(now=NOW + timedelta(days=2))
    assert summary["expired"] == 2 and counter(item) == 0
    assert recount(fix=False) == []


def test_a_device_moving_to_another_item_frees_its_seat_there(client):
    first = factories.LicenseItemFactory(quantity=1, device_grace_percent=0, period="daily")
    second = factories.LicenseItemFactory(project=first.project, quantity=5)
    assert authorize(client, first.project, "a").json()["item"]["id"] == first.item_id
    first.license.expires_at = NOW + timedelta(hours=1)  # the first item ends: "a" moves on
    first.license.save()
    move_clock(NOW + timedelta(days=2))
    body = authorize(client, first.project, "a").json()
    assert body["item"]["id"] == second.item_id
    assert counter(first) == 0 and counter(second) == 1
    assert recount(fix=False) == []


def test_a_full_item_expires_its_run_out_devices_before_refusing(client):
    item = factories.LicenseItemFactory(quantity=2, device_grace_percent=0, period="daily")
    authorize(client, item.project, "a")
    authorize(client, item.project, "b")
    move_clock(NOW + timedelta(days=2))  # both ran out; the expiry job has not run
    assert authorize(client, item.project, "c").status_code == 200
    assert set(Device.objects.filter(item=item).values_list("device_uuid", "state")) == {
        ("a", "expired"), ("b", "expired"), ("c", "active")
    }  # fmt: skip
    assert counter(item) == 1 and recount(fix=False) == []


def test_repair_seat_counts_finds_and_fixes_a_drifted_counter(client):
    item = factories.LicenseItemFactory(quantity=5)
    authorize(client, item.project, "a")
    SeatCounter.objects.filter(item=item).update(active=4)
    with pytest.raises(CommandError):
        call_command("repair_seat_counts", "--check", stdout=io.StringIO())
    out = io.StringIO()
    call_command("repair_seat_counts", stdout=out)
    assert json.loads(out.getvalue())["wrong"] == [{"item": item.pk, "counter": 4, "active_devices": 1}]
    assert counter(item) == 1
    call_command("repair_seat_counts", "--check", stdout=io.StringIO())  # now right: no error


def test_an_item_with_a_counter_is_not_counted_again(client):
    """Every refusal at the ceiling ensures the item's counter (devices.seats.ensure_counter):
    with the counter there, its count of the item's devices never runs (PostgreSQL's plan: the
    subquery never executed), and a counter that says otherwise than the devices is left alone
    (the repair command's business)."""
    from django.db import connection

    from devices.seats import _ensure_counter_sql, ensure_counter

    item = factories.LicenseItemFactory(quantity=5)
    assert authorize(client, item.project, "a").status_code == 200
    SeatCounter.objects.filter(item=item).update(active=4)
    ensure_counter(item)
    assert counter(item) == 4
    SeatCounter.objects.filter(item=item).delete()
    ensure_counter(item)
    assert counter(item) == 1  # none: made from the live devices
    if connection.vendor == "postgresql":
        sql, params = _ensure_counter_sql(item.pk)
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            plan = json.dumps(cursor.fetchone()[0])
        assert '"Relation Name": "devices_device"' in plan
        scans = [node for node in _nodes(json.loads(plan)[0]["Plan"]) if node.get("Relation Name") == "devices_device"]
        assert scans and all(node["Actual Loops"] == 0 for node in scans), plan


def _nodes(node):
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def test_a_refusal_at_the_ceiling_reads_no_more_than_a_seat(client):
    """A full item refuses a new device in the exact way (devices.seats._take_slow), which every
    such device takes: a few statements, none of them counting the item's devices."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    item = factories.LicenseItemFactory(quantity=3)
    for uuid in ("a", "b", "c"):
        assert authorize(client, item.project, uuid).status_code == 200
    assert authorize(client, item.project, "d").status_code == 403  # the first refusal folds the shares
    with CaptureQueriesContext(connection) as queries:
        answer = authorize(client, item.project, "e")
    assert answer.status_code == 403 and answer.json()["error"]["code"] == 120
    sql = [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
    ]
    assert len(sql) <= 8, sql

"""A project's devices by state kept by the database (devices.tally): after every kind of change
the tally equals the devices counted, a usage report appends nothing, the expiry job's fold
keeps the sums and drops a deleted project's rows, the repair command finds and fixes a drifted
tally, the devices page shows it, and on PostgreSQL new devices, releases and the expiry job at
once leave it exact. On both backends (the triggers are each backend's own SQL)."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, Q
from django.test import Client

from devices import tally
from devices.models import Device, DeviceTally
from tests import factories
from tests.factories import NOW, authorize, post, report
from tests.moments import MODEL_BACKEND
from usage import jobs

pytestmark = pytest.mark.django_db


def live_totals(project_id: int, *, now) -> dict[str, int]:
    """What the devices page counted before the tally: the devices themselves, by the portal's
    state filters (portal.views.devices._state_q)."""
    from portal.views.devices import _state_q

    return Device.objects.filter(project_id=project_id).aggregate(
        all=Count("id"),
        active=Count("id", filter=_state_q("active", now)),
        expired=Count("id", filter=_state_q("expired", now)),
        released=Count("id", filter=_state_q("released", now)),
        servers=Count("id", filter=Q(client_type="server")),
    )


def assert_exact(*projects) -> None:
    for project in projects:
        assert tally.totals(project.pk, now=NOW) == live_totals(project.pk, now=NOW), project
    assert tally.recount(fix=False) == []


def at_once(work: list, run) -> list[BaseException]:
    """``run(job)`` for every job of ``work``, each from its own thread and connection, all
    released at once by a barrier; the exceptions they raised."""
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def one(job):
        try:
            barrier.wait()
            run(job)
        except BaseException as exc:  # pragma: no cover - reported by the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(job,)) for job in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_every_kind_of_device_change_moves_the_tally():
    seats = factories.LicenseItemFactory(per_client_device=True, quantity=100)
    servers = factories.LicenseItemFactory(per_server=True, license=seats.license, project=seats.project, quantity=9)
    other = factories.LicenseItemFactory(per_client_device=True)
    project = seats.project
    a, b, c = (factories.DeviceFactory(item=seats) for _ in range(3))
    s = factories.DeviceFactory(item=servers)
    factories.DeviceFactory(item=seats, state=Device.RELEASED)
    factories.DeviceFactory(item=seats, state=Device.EXPIRED)
    assert tally.totals(project.pk, now=NOW) == {"all": 6, "active": 4, "expired": 1, "released": 1, "servers": 1}
    assert_exact(project, other.project)

    Device.objects.filter(pk=a.pk).update(state=Device.EXPIRED)  # a queryset update
    b.state = Device.RELEASED
    b.save()  # a model save (every column)
    Device.objects.filter(pk=c.pk).update(client_type="server")  # a device becoming a server
    Device.objects.filter(pk=s.pk).update(project=other.project, item=other)  # moved to another project
    assert tally.totals(project.pk, now=NOW) == {"all": 5, "active": 1, "expired": 2, "released": 2, "servers": 1}
    assert_exact(project, other.project)

    Device.objects.filter(pk=c.pk).delete()
    Device.objects.filter(project=other.project).delete()
    assert tally.totals(other.project.pk, now=NOW) == {"all": 0, "active": 0, "expired": 0, "released": 0, "servers": 0}
    assert_exact(project, other.project)


def test_a_device_whose_active_until_has_come_counts_as_expired_before_the_job_marks_it():
    item = factories.LicenseItemFactory(per_client_device=True)
    factories.DeviceFactory(item=item, active_until=NOW)  # ran out at this instant (SPEC 4)
    factories.DeviceFactory(item=item, active_until=NOW + timedelta(microseconds=1))
    totals = tally.totals(item.project_id, now=NOW)
    assert totals["active"] == 1 and totals["expired"] == 1 and totals == live_totals(item.project_id, now=NOW)
    assert Device.objects.filter(state=Device.ACTIVE).count() == 2  # not yet marked: counted from the index
    jobs.expire_idle_devices(now=NOW)
    assert tally.totals(item.project_id, now=NOW) == totals  # marked now: the same figures from the tally


def test_a_usage_report_appends_no_tally_row(client, no_rate_limits):
    item = factories.LicenseItemFactory(per_barcode_scan=True)
    assert authorize(client, item.project).status_code == 200
    rows = DeviceTally.objects.count()
    for i in range(3):
        assert report(client, item.project, report_id=f"r-{i}", barcode_scans=1).status_code == 200
    assert DeviceTally.objects.count() == rows  # the refresh changes no tracked column
    assert_exact(item.project)


def test_the_fold_keeps_the_sums_and_drops_a_deleted_projects_rows():
    kept = factories.LicenseItemFactory(per_client_device=True)
    gone = factories.LicenseItemFactory(per_client_device=True)
    devices = [factories.DeviceFactory(item=kept) for _ in range(4)]
    factories.DeviceFactory(item=gone)
    Device.objects.filter(pk__in=[d.pk for d in devices[:2]]).update(state=Device.RELEASED)
    before = tally.totals(kept.project_id, now=NOW)
    Device.objects.filter(project=gone.project).delete()
    gone.delete()
    gone.project.delete()  # no foreign key: the project's rows (+1, -1) stay until the fold
    assert DeviceTally.objects.filter(project_id=gone.project_id).count() == 2
    rows = DeviceTally.objects.count()
    folded = tally.compact()
    assert folded == rows - 2  # kept: one row per (state, server) left, active 2 and released 2
    assert set(DeviceTally.objects.values_list("project_id", "state", "server", "n")) == {
        (kept.project_id, Device.ACTIVE, False, 2),
        (kept.project_id, Device.RELEASED, False, 2),
    }
    folded_rows = set(DeviceTally.objects.values_list("pk", flat=True))
    assert tally.totals(kept.project_id, now=NOW) == before and tally.compact() == 0
    assert set(DeviceTally.objects.values_list("pk", flat=True)) == folded_rows  # nothing rewritten
    devices[3].delete()  # one group gets a second row: only that group is folded again
    assert tally.compact() == 1
    assert set(DeviceTally.objects.filter(state=Device.RELEASED).values_list("pk", flat=True)) <= folded_rows
    assert_exact(kept.project)


def test_the_repair_command_finds_and_fixes_a_drifted_tally():
    item = factories.LicenseItemFactory(per_client_device=True)
    factories.DeviceFactory(item=item)
    DeviceTally.objects.create(project=item.project, state=Device.ACTIVE, server=False, n=5)  # drifted
    with pytest.raises(CommandError, match="1 device tally count"):
        call_command("repair_seat_counts", "--check", stdout=io.StringIO())
    out = io.StringIO()
    call_command("repair_seat_counts", stdout=out)
    assert json.loads(out.getvalue())["wrong_tallies"] == [
        {"project": item.project_id, "state": "active", "server": False, "tally": 6, "devices": 1}
    ]
    call_command("repair_seat_counts", "--check", stdout=io.StringIO())  # right again
    assert_exact(item.project)


def test_the_devices_page_shows_the_tally(client):
    item = factories.LicenseItemFactory(per_client_device=True)
    owner = factories.MembershipFactory(organization=item.project.organization).user
    for _ in range(3):
        factories.DeviceFactory(item=item)
    factories.DeviceFactory(item=item, active_until=NOW - timedelta(seconds=1))  # run out, not yet marked
    client.force_login(owner, backend=MODEL_BACKEND)
    page = client.get(f"/projects/{item.project_id}/devices/")
    assert page.status_code == 200
    assert "4 in all: <strong>3</strong> active, 1 expired, 0 released; 0 servers." in page.content.decode()
    # a row the triggers did not write (as if drifted) shows: the page reads the tally
    DeviceTally.objects.create(project=item.project, state=Device.RELEASED, server=False, n=2)
    assert (
        "6 in all: <strong>3</strong> active, 1 expired, 2 released"
        in client.get(f"/projects/{item.project_id}/devices/").content.decode()
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_new_devices_releases_and_the_expiry_job_at_once_leave_the_tally_exact(postgres_only, no_rate_limits, frozen):
    """Threads with their own connections, released by a barrier: new devices on two items of a
    project, releases and the expiry job with its fold, at once; then the tally equals the devices."""
    lic = factories.LicenseFactory(starts_at=NOW - timedelta(days=1))
    project = factories.ProjectFactory(organization=lic.organization)
    seats = factories.LicenseItemFactory(per_client_device=True, license=lic, project=project, quantity=10**6)
    more = factories.LicenseItemFactory(per_client_device=True, license=lic, project=project, quantity=10**6)
    factories.LicenseItemFactory(per_server=True, license=lic, project=project, quantity=10**6)  # the servers' item
    old = [factories.DeviceFactory(item=seats, active_until=NOW - timedelta(minutes=1)) for _ in range(20)]
    held = [factories.DeviceFactory(item=more) for _ in range(20)]
    work = [("authorize", {"license_key": project.license_key, "device_uuid": f"new-{i}", "product": "dbr",
                           **({"client_type": "server", "edition": "server"} if i % 5 == 0 else {"client_type": "desktop"})})
            for i in range(24)]  # fmt: skip
    work += [("release", {"license_key": project.license_key, "device_uuid": d.device_uuid}) for d in held[:12]]
    work += [("job", {})] * 4

    def run(path_body):
        path, body = path_body
        if path == "job":
            jobs.expire_idle_devices(now=NOW)
        else:
            answer = post(Client(), path, body)
            assert answer.status_code == 200, answer.content

    errors = at_once(work, run)
    assert not errors, errors
    assert all(Device.objects.get(pk=d.pk).state == Device.EXPIRED for d in old)
    assert tally.totals(project.pk, now=NOW)["all"] == 20 + 20 + 24
    assert_exact(project)
    tally.compact()
    assert_exact(project)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_folds_and_repairs_beside_new_devices_leave_the_tally_exact(postgres_only, no_rate_limits, frozen):
    """New devices, the fold and the repair of a drifted tally, all at once: a repair rebuilds a
    project's rows in one statement and takes the fold's lock, so no row is summed twice."""
    lic = factories.LicenseFactory(starts_at=NOW - timedelta(days=1))
    project = factories.ProjectFactory(organization=lic.organization)
    factories.LicenseItemFactory(per_client_device=True, license=lic, project=project, quantity=10**6)
    for _ in range(10):
        factories.DeviceFactory(project=project, item=project.items.get())
    DeviceTally.objects.create(project=project, state=Device.ACTIVE, server=False, n=7)  # drifted
    work = [("authorize", i) for i in range(24)] + [("fold", 0)] * 4 + [("repair", 0)] * 4

    def run(job):
        kind, i = job
        if kind == "fold":
            tally.compact()
        elif kind == "repair":
            tally.recount(fix=True)
        else:
            answer = post(Client(), "authorize", {"license_key": project.license_key, "device_uuid": f"n-{i}",
                                                  "product": "dbr", "client_type": "desktop"})  # fmt: skip
            assert answer.status_code == 200, answer.content

    errors = at_once(work, run)
    assert not errors, errors
    assert tally.totals(project.pk, now=NOW)["all"] == 10 + 24
    assert_exact(project)

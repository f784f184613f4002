"""Insight pages: the item's what-if (owner runs it and reads the answer and the right quantity;
viewer reads but cannot run; outsider 404), a long window as a background ReplayRun with its
progress, the project's flags and seats burned, the staff upsell list; the right quantity on
hand-built histories."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests import factories
from tests.factories import MODEL_BACKEND, NOW, SLOT, authorize, move_clock, report
from usage.anomalies import detect_anomalies
from usage.insight.quantity import right_quantity
from usage.models import ProjectAnomaly, ReplayRun
from usage.replay import run_stored

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def seat_history(client, *, quantity=4, devices=6):
    item = factories.LicenseItemFactory(quantity=quantity, device_grace_percent=0)
    for i in range(devices):
        move_clock(NOW + timedelta(minutes=i))
        authorize(client, item.project, f"d-{i}")
    move_clock(NOW + timedelta(hours=1))
    return item


def login(client, item, role="owner"):
    user = factories.UserFactory(organization=item.project.organization, role=role)
    client.force_login(user, backend=MODEL_BACKEND)
    return user


def url(item, *rest):
    return f"/projects/{item.project.pk}/items/{item.pk}/what-if/" + "".join(f"{r}/" for r in rest)


def window(days=2, **policy):
    return {"start": NOW.date().isoformat(), "end": (NOW + timedelta(days=days)).date().isoformat(), **policy}


def test_an_owner_asks_what_if_we_had_more_seats(client):
    item = seat_history(client)
    login(client, item)
    page = client.post(url(item), window(quantity=5, recommend="1"))
    html = page.content.decode()
    assert page.status_code == 200
    assert '<strong id="refused">1</strong>' in html and '<strong id="actual-refused">2</strong>' in html
    assert "seats_exhausted" in html
    assert '<strong id="rq-none">6</strong>' in html


def test_a_viewer_reads_but_cannot_run_and_an_outsider_sees_nothing(client):
    item = seat_history(client)
    login(client, item, role="viewer")
    assert client.get(url(item)).status_code == 200
    assert client.post(url(item), window(quantity=5)).status_code == 403
    client.force_login(factories.UserFactory(organization=factories.OrganizationFactory()), backend=MODEL_BACKEND)
    assert client.get(url(item)).status_code == 404
    assert client.get(f"/projects/{item.project.pk}/insight/").status_code == 404


def test_a_bad_value_is_a_form_error(client):
    item = seat_history(client)
    login(client, item)
    page = client.post(url(item), window(days=120, quantity=5))
    assert page.status_code == 200 and "a window is at most 90 days" in page.content.decode()


def test_a_long_window_runs_in_the_background_with_progress(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    item = seat_history(client)
    login(client, item)
    from unittest import mock

    with mock.patch("usage.tasks.run_replay.delay") as delay:
        answer = client.post(url(item), window(days=60, quantity=5))
    run = ReplayRun.objects.get()
    delay.assert_called_once_with(run.pk)
    assert answer.status_code == 302 and answer["Location"] == url(item, run.pk)
    assert "queued" in client.get(url(item, run.pk)).content.decode()
    run_stored(run.pk, now=lambda: NOW + timedelta(hours=2))
    run.refresh_from_db()
    assert run.status == "done" and run.progress == 100 and run.result["refused"] == 1
    page = client.get(url(item, run.pk)).content.decode()
    assert 'value="100"' in page and "done" in page
    run_stored(run.pk, now=lambda: NOW)  # a redelivered task does nothing more
    assert ReplayRun.objects.get().finished_at == NOW + timedelta(hours=2)


def test_the_project_page_shows_flags_and_the_staff_page_the_upsell(client):
    item = seat_history(client)
    from tests.factories import auth_body, post

    post(client, "authorize", auth_body(item.project, "d-0"), REMOTE_ADDR="203.0.113.5")
    move_clock(NOW + timedelta(hours=1, minutes=2))
    post(client, "authorize", auth_body(item.project, "d-0"), REMOTE_ADDR="198.51.100.9")
    detect_anomalies(now=NOW + timedelta(hours=2))
    assert ProjectAnomaly.objects.filter(kind="far_networks").exists()
    login(client, item)
    html = client.get(f"/projects/{item.project.pk}/insight/").content.decode()
    assert "far_networks" in html and "198.51.100.9" in html
    assert f"/projects/{item.project.pk}/insight/" in client.get(f"/projects/{item.project.pk}/").content.decode()
    assert client.get("/staff/insight/").status_code == 403
    staff = factories.UserFactory(is_staff=True)
    client.force_login(staff, backend=MODEL_BACKEND)
    html = client.get("/staff/insight/").content.decode()
    assert f"#{item.pk} dbr per_client_device" in html and "far_networks" in html


def test_right_quantity_of_seats_on_a_hand_built_history(client):
    """Six devices at once on 4 seats (no grace): 6 refuse nothing; with 40 authorizations of
    the six, refusing one device's authorization is 1/40 = 2.5 %, so under 1 % also needs 6."""
    item = seat_history(client)
    for k in range(34):
        move_clock(NOW + timedelta(hours=2, minutes=k))
        authorize(client, item.project, f"d-{k % 4}")
    figures = right_quantity(item, start=NOW, end=NOW + timedelta(days=1))
    assert figures["current"] == {
        "quantity": 4,
        "refused": 2,
        "share_refused": 0.05,
        "grace_seats_used": 0,
        "peak_seats": 4,
    }
    assert figures["none_refused"]["quantity"] == 6 and figures["none_refused"]["refused"] == 0
    assert figures["under_1_percent"]["quantity"] == 6


def test_right_quantity_of_a_concurrent_item_and_its_overuse(client):
    """A hundred slots of two devices, one of five (no overuse allowance): quantity 5 refuses
    nothing, quantity 2 refuses three reports."""
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=2, overuse_percent=0)
    n = 0
    for s in range(100):
        slot = SLOT + timedelta(minutes=3 * s)
        width = 5 if s == 2 else 2
        for k in range(width):
            move_clock(slot + timedelta(seconds=10 + k))
            authorize(client, item.project, f"c-{k}")
            n += 1
            report(client, item.project, f"c-{k}", f"r-{n}", slot=slot, barcode_scans=1)
    figures = right_quantity(item, start=NOW, end=NOW + timedelta(days=1))
    assert figures["current"]["refused"] == 3
    assert figures["none_refused"]["quantity"] == 5 and figures["none_refused"]["overuse_spent"] == 0
    # 2 refuses 3 of 203 reports (1.48 %), 3 refuses 2 (0.99 %): under 1 %.
    assert figures["under_1_percent"]["quantity"] == 3 and figures["under_1_percent"]["refused"] == 2

"""Every portal page, staff page and admin page of an organization whose items are all at the
largest quantity the importer accepts (tests/max_quantity.py), after every job ran once: each
answers as it should (no "integer out of range" on PostgreSQL, no date overflow in Python) and
shows the right figures. The portal's URL names come from the resolver, so a new page without a
visit here fails ``test_every_portal_page``."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from devices.models import Device, SeatCounter
from licenses.models import AlertRecipient, Invitation, Membership
from tests import factories
from tests.factories import MODEL_BACKEND
from tests.max_quantity import MAX_QUANTITY, max_world, model
from usage.jobs import JOBS
from usage.models import ReplayRun
from usage.replay import FIELDS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]
APPS = ("licenses", "devices", "usage", "api")  # the admin pages of the product's own models
HUGE = 10**20  # a number parameter past 64 bits


def url_names(namespace: str) -> list[str]:
    """Every URL pattern name of ``namespace``, from the resolver."""

    def walk(patterns, ns):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, p.namespace or ns)
            elif isinstance(p, URLPattern) and ns == namespace and p.name:
                yield p.name

    return sorted(set(walk(get_resolver().url_patterns, None)))


@pytest.fixture
def mw(now, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True  # the endpoint registered below is on 127.0.0.1
    w = max_world(now)
    for name in JOBS:  # the state a day of jobs leaves: rollups, alerts, flags
        call_command("run_job", name, stdout=open("/dev/null", "w"))  # noqa: SIM115
    return w


def login(user) -> Client:
    client = Client()
    client.force_login(user, backend=MODEL_BACKEND)
    return client


def offline_request(device_uuid: str) -> str:
    return json.dumps(
        {"device_uuid": device_uuid, "product": "dbr", "edition": "javascript", "client_type": "desktop",
         "requested_at": "2026-11-27T17:20:00Z"}
    )  # fmt: skip


def prefilled(item) -> dict:
    """The what-if form as a browser sends it: every policy field with the item's value."""
    body = {}
    for name in FIELDS[item.option]:
        if name == "quantities":
            body.update({f"quantities.{m}": n for m, n in item.quantities.items()})
        else:
            value = getattr(item, name)
            body[name] = "" if value is None else value
    return body


def visits(w) -> dict[str, list[tuple[str, str, dict | None, int]]]:
    """Per portal URL name: (method, url, POST body or None, expected status), as the owner."""
    p, o = w.project.pk, w.org.pk
    today = w.now.date()
    stats = reverse("portal:statistics", args=[p])
    viewer = Membership.objects.get(user=w.viewer, organization=w.org)
    endpoint = model("WebhookEndpoint").objects.get(organization=w.org)
    delivery = model("WebhookDelivery").objects.get(endpoint=endpoint)
    token = model("ApiToken").objects.filter(organization=w.org).first()
    invitation = Invitation.objects.get(organization=w.org)
    run = ReplayRun.objects.get(item=w.seats)
    recipient = AlertRecipient.objects.get(organization=w.org)
    items = list(w.project.items_in_order())
    ids = [str(i.pk) for i in items]
    what_if = []
    for item in items:
        url = reverse("portal:item_insight", args=[p, item.pk])
        what_if.append(("GET", url, None, 200))
        if item.option == "per_domain":
            continue
        change = {"quantities.core": MAX_QUANTITY - 1} if item.option == "per_page" else {"quantity": MAX_QUANTITY - 1}
        body = {"start": str(today - factories.timedelta(days=30)), "end": str(today + factories.timedelta(days=1))}
        what_if.append(("POST", url, {**body, **prefilled(item), **change, "recommend": "1"}, 200))
    g = lambda name, *args, query="": ("GET", reverse(f"portal:{name}", args=args) + query, None, 200)  # noqa: E731
    return {
        "home": [g("home")],
        "organization": [g("organization", o)],
        "project": [g("project", p)],
        "project_reorder": [("POST", reverse("portal:project_reorder", args=[p]), {"item_ids": ids[::-1]}, 302)],
        "devices": [
            g("devices", p),
            *[g("devices", p, query=f"?state={s}") for s in ("active", "expired", "released")],
            *[g("devices", p, query=f"?kind={k}") for k in ("devices", "servers", "offline")],
            g("devices", p, query="?q=max-"),
            g("devices", p, query=f"?page={HUGE}"),  # an OFFSET past 64 bits: the last page
        ],
        "device": [g("device", d.pk) for d in w.devices.values()]
        + [g("device", w.devices["seat1"].pk, query=f"?page={HUGE}")],
        "statistics": [
            g("statistics", p),
            ("GET", f"{stats}?start={today}&end={today}", None, 200),
            ("GET", f"{stats}?start={today - factories.timedelta(days=7)}&end={today}&day={today}", None, 200),
            ("GET", f"{stats}?start={today - factories.timedelta(days=365)}&end={today}", None, 200),
            ("GET", f"{stats}?end={today}", None, 200),
            ("GET", f"{stats}?day={today - factories.timedelta(days=1)}", None, 200),
        ],
        "concurrency": [g("concurrency", p), g("concurrency", p, query=f"?day={today - factories.timedelta(days=1)}")],
        "export": [g("export", p, what) for what in ("usage", "concurrency", "devices")],
        "refusals": [
            *[g("refusals", p, query=f"?days={n}") for n in (1, 7, 30, 90)],
            *[g("refusals", p, query=f"?days=30&item={i.pk}") for i in items],
            g("refusals", p, query="?days=30&rule=seats_exhausted"),
            g("refusals", p, query=f"?days=30&item={HUGE}&page={HUGE}"),
        ],
        "protection": [g("protection", p)],
        "rotate_key": [("POST", reverse("portal:rotate_key", args=[p]), {"grace_days": "30"}, 302)],
        "offline_register": [
            g("offline_register", p),
            ("POST", reverse("portal:offline_register", args=[p]), {"request_text": offline_request("off-1")}, 200),
            ("POST", reverse("portal:offline_register", args=[p]), {"request_text": offline_request("off-2")}, 400),
        ],
        "release_idle": [
            g("release_idle", p, query="?days=1"),
            g("release_idle", p, query=f"?days={HUGE}"),
            ("POST", reverse("portal:release_idle", args=[p]), {"days": "1", "confirm": "yes"}, 302),
        ],
        "release_idle_undo": [("POST", reverse("portal:release_idle_undo", args=[p]), {"batch": "1"}, 302)],
        "device_release": [
            g("device_release", w.devices["seat0"].pk),
            ("POST", reverse("portal:device_release", args=[w.devices["seat0"].pk]), {"confirm": "yes"}, 302),
        ],
        "alert_recipients": [g("alert_recipients", o)],
        "alert_recipient_delete": [("POST", reverse("portal:alert_recipient_delete", args=[o, recipient.pk]), {}, 302)],
        "team": [g("team", o)],
        "member_role": [("POST", reverse("portal:member_role", args=[o, viewer.pk]), {"role": "viewer"}, 302)],
        "member_remove": [g("member_remove", o, viewer.pk)],
        "invitation_cancel": [("POST", reverse("portal:invitation_cancel", args=[o, invitation.pk]), {}, 302)],
        "invitation_accept": [g("invitation_accept", w.invitation_token)],
        "insight": [g("insight", p)],
        "seat_burn": [g("seat_burn", p)],
        "item_insight": what_if,
        "replay_run": [g("replay_run", p, w.seats.pk, run.pk)],
        "integrations": [g("integrations", o)],
        "token_create": [
            ("POST", reverse("portal:token_create", args=[o]), {"name": "ci", "scope": "read"}, 200),
        ],
        "token_revoke": [g("token_revoke", o, token.pk)],
        "webhook_create": [
            ("POST", reverse("portal:webhook_create", args=[o]), {"url": "http://127.0.0.1:9/h"}, 200),
        ],
        "webhook": [g("webhook", o, endpoint.pk)],
        "webhook_rotate": [g("webhook_rotate", o, endpoint.pk)],
        "webhook_delete": [g("webhook_delete", o, endpoint.pk)],
        "webhook_redeliver": [
            ("POST", reverse("portal:webhook_redeliver", args=[o, endpoint.pk, delivery.pk]), {}, 302),
        ],
        # Staff pages: visited as staff (below).
        "staff_dashboard": [g("staff_dashboard")],
        "staff_insight": [g("staff_insight")],
    }


STAFF_ONLY = ("staff_dashboard", "staff_insight")
STAFF_READS = {"organization", "project", "devices", "device", "statistics", "concurrency", "export", "refusals"}
STAFF_READS |= {"protection", "alert_recipients", "team", "insight", "seat_burn", "item_insight", "replay_run"}
STAFF_READS |= {"integrations", "webhook"}


@pytest.mark.parametrize("name", url_names("portal"))
def test_every_portal_page(mw, name):
    planned = visits(mw)
    assert name in planned, f"portal:{name} has no visit in this test: add one"
    client = login(mw.staff if name in STAFF_ONLY else mw.owner)
    for method, url, body, status in planned[name]:
        response = client.get(url) if method == "GET" else client.post(url, body)
        assert response.status_code == status, (method, url, response.status_code)
        if name == "item_insight" and method == "POST":  # replayed, not refused as out of range
            assert response.context["result"] is not None, response.context["policy"].errors
            if response.context["recommendable"]:
                assert response.context["recommendation"]["current"]["quantity"] == MAX_QUANTITY
    if name in STAFF_READS:  # staff see every customer page read-only, as the customer does
        staff = login(mw.staff)
        for url in [url for method, url, _, _ in planned[name] if method == "GET"]:
            assert staff.get(url).status_code == 200, url


def text(response) -> str:
    return " ".join(response.content.decode().split())


def test_the_meters_show_the_figures_at_the_largest_quantity(mw):
    page = text(login(mw.owner).get(reverse("portal:project", args=[mw.project.pk])))
    refused_from = mw.scan.quota_refused_from(MAX_QUANTITY)  # 2,254,857,830: the grace limit
    assert refused_from == 2_254_857_830
    # The scan item at its grace limit: 105 %, nothing left, refused from there.
    assert f"<strong>{refused_from:,}</strong> of {MAX_QUANTITY:,} scans · <strong>105.0 %</strong>" in page
    assert f"0 left; refused from {refused_from:,}" in page
    # Just under the quantity at 1 scan a day: the run-out is past the license's expiry.
    assert f"<strong>{MAX_QUANTITY - 1:,}</strong> of {MAX_QUANTITY:,} scans · <strong>100.0 %</strong>" in page
    assert "1 left; refused from" in page and "lasts past the license's expiry" in page
    # Pages: ocr past 2^31, pdfr at 1 a day.
    assert f"<strong>{2**31 + 5:,}</strong> of {MAX_QUANTITY:,} pages" in page
    assert f"{MAX_QUANTITY - 7:,} left; refused from {refused_from:,}" in page
    # The default overuse budget is 1000 x quantity; the capped one is spent.
    assert f"<strong>{2**31 + 7:,}</strong> of {1000 * MAX_QUANTITY:,} device-slots · <strong>0.1 %</strong>" in page
    assert f"<strong>{MAX_QUANTITY:,}</strong> of {MAX_QUANTITY:,} device-slots · <strong>100.0 %</strong>" in page
    # Seats: the devices holding one (3 online, 1 offline), refused from the ceiling.
    assert f"<strong>4</strong> of {MAX_QUANTITY:,} seats" in page
    assert f"refused from {mw.seats.seat_ceiling:,}" in page and mw.seats.seat_ceiling == 2_362_232_011


def test_the_staff_dashboard_lists_the_items_past_their_quota(mw):
    page = text(login(mw.staff).get(reverse("portal:staff_dashboard")))
    num = '<td class="num">'
    near = [  # (what, used, class, percent): each quota counter at or past 80 %
        ("Barcode scans", mw.scan.quota_refused_from(MAX_QUANTITY), "bad", "105.0"),
        ("Barcode scans", MAX_QUANTITY - 1, "warn", "100.0"),  # 99.99999995 %
        ("Pages (core)", MAX_QUANTITY - 1, "warn", "100.0"),
        ("Frames (webcam)", mw.pages.quota_refused_from(MAX_QUANTITY), "bad", "105.0"),
        ("Pages (OCR)", 2**31 + 5, "bad", "100.0"),
    ]
    for what, used, level, percent in near:
        row = f'<td>{what}</td>{num}{used:,}</td>{num}{MAX_QUANTITY:,}</td> <td class="{level}">{percent} %</td>'
        assert row in page, row
    assert "Pages (PDF rasterizer)" not in page  # 7 of 2,147,483,647
    # Overuse budgets: the default 1000 x quantity at 0.1 %, the capped one spent.
    assert f'{num}{2**31 + 7:,}</td>{num}{1000 * MAX_QUANTITY:,}</td><td class="">0.1 %</td>' in page
    assert f'{num}{MAX_QUANTITY:,}</td>{num}{MAX_QUANTITY:,}</td><td class="warn">100.0 %</td>' in page


def test_the_offline_registration_takes_the_last_seat_under_the_ceiling(mw):
    """The seat counter one under the ceiling (2,362,232,010, past 2^31): one more device fits."""
    owner = login(mw.owner)
    url = reverse("portal:offline_register", args=[mw.project.pk])
    assert owner.post(url, {"request_text": offline_request("off-1")}).status_code == 200
    assert SeatCounter.objects.get(item=mw.seats).active == mw.seats.seat_ceiling
    refused = owner.post(url, {"request_text": offline_request("off-2")})
    assert refused.status_code == 400
    assert f"{mw.seats.seat_ceiling} of {MAX_QUANTITY} seats are taken" in text(refused)
    assert not Device.objects.filter(device_uuid="off-2").exists()


def admin_visits(w) -> list[str]:
    """The change list, add form, and each object's change, history and delete pages of every
    model of the product's apps registered in the admin, and the custom license pages."""
    urls = []
    for registered, model_admin in admin.site._registry.items():
        meta = registered._meta
        if meta.app_label not in APPS:
            continue
        prefix = f"admin:{meta.app_label}_{meta.model_name}"
        urls.append(reverse(f"{prefix}_changelist"))
        if model_admin.has_add_permission(type("R", (), {"user": w.staff})()):
            urls.append(reverse(f"{prefix}_add"))
        for obj in registered._default_manager.order_by("pk")[:20]:
            urls += [reverse(f"{prefix}_{view}", args=[obj.pk]) for view in ("change", "history", "delete")]
            if meta.model_name == "license":
                urls += [reverse(f"{prefix}_{view}", args=[obj.pk]) for view in ("renew", "add_quota")]
    return urls


def test_every_admin_page_of_the_products_models(mw):
    staff = login(mw.staff)
    urls = admin_visits(mw)
    assert len(urls) > 50
    for url in urls:
        response = staff.get(url)
        assert response.status_code in (200, 403), (url, response.status_code)  # 403: a read-only model's delete
    assert staff.get(reverse("admin:licenses_license_import")).status_code == 200
    items = text(staff.get(reverse("admin:licenses_licenseitem_changelist")))
    assert str(MAX_QUANTITY) in items or f"{MAX_QUANTITY:,}" in items


def test_a_long_what_if_runs_in_the_background_at_the_largest_quantity(mw):
    """A window over 31 days is a ReplayRun (the Celery task calls run_stored): the same ranges."""
    from unittest import mock

    from usage.replay import run_stored

    owner = login(mw.owner)
    url = reverse("portal:item_insight", args=[mw.project.pk, mw.concurrent.pk])
    today = mw.now.date()
    body = {"start": str(today - factories.timedelta(days=60)), "end": str(today + factories.timedelta(days=1))}
    body.update(prefilled(mw.concurrent), overuse_budget=MAX_QUANTITY, overuse_percent=1000)
    with mock.patch("usage.tasks.run_replay.delay") as delay:
        answer = owner.post(url, body)
    run = ReplayRun.objects.filter(item=mw.concurrent).get()
    delay.assert_called_once_with(run.pk)
    assert answer.status_code == 302 and run.changes == {"overuse_budget": MAX_QUANTITY}
    run_stored(run.pk, now=lambda: mw.now)
    run.refresh_from_db()
    assert run.status == "done", run.error
    assert run.result["overuse_spent"] >= 0
    page = owner.get(reverse("portal:replay_run", args=[mw.project.pk, mw.concurrent.pk, run.pk]))
    assert page.status_code == 200 and "done" in page.content.decode()

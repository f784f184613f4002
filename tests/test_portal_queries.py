"""Query counts of every list page do not grow with the data: the same page at two sizes (3 and
60 devices with their decisions, reports and rollups) runs the same number of queries, under a
fixed bound (django_assert_max_num_queries)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices.models import Decision
from licenses.models import AuditLog, Invitation
from tests import factories
from tests.factories import MODEL_BACKEND, world

pytestmark = pytest.mark.django_db

# Session + user + memberships + the page's own reads; generous but fixed.
MAX_QUERIES = 16


def pages(w) -> dict[str, str]:
    p = w.project.pk
    return {
        "home": reverse("portal:home"),
        "project": reverse("portal:project", args=[p]),
        "devices": reverse("portal:devices", args=[p]),
        "devices filtered": reverse("portal:devices", args=[p]) + "?q=Front&state=active&kind=devices",
        "device": reverse("portal:device", args=[w.device.pk]),
        "statistics": reverse("portal:statistics", args=[p]),
        "concurrency": reverse("portal:concurrency", args=[p]),
        "recipients": reverse("portal:alert_recipients", args=[w.org.pk]),
        "organization": reverse("portal:organization", args=[w.org.pk]),
        "refusals": reverse("portal:refusals", args=[p]),
        "refusals filtered": reverse("portal:refusals", args=[p]) + "?days=30&rule=seats_exhausted",
        "team": reverse("portal:team", args=[w.org.pk]),
        "release confirm": reverse("portal:device_release", args=[w.device.pk]),
        "release idle": reverse("portal:release_idle", args=[p]) + "?days=1",
    }


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200, url
    return len(ctx.captured_queries)


RULES = ["seats_exhausted", "quota_exhausted", "slot_ceiling_reached", "domain_mismatch", "license_expired"]


def grow(w, n: int) -> None:
    """More refusals (of several rules and items) and audit entries for the staff dashboard,
    decisions of the device, members and invitations for the team page."""
    items = [w.seats, w.scan, w.concurrent, w.domain, w.server]
    for k in range(n):
        factories.DecisionFactory(
            device=w.device, now=w.now, allowed=False, code=120 + (k % 3), created_at=w.now - timedelta(minutes=k),
            rule=RULES[k % len(RULES)], item=items[k % len(items)], counts={"active": 11, "quantity": 10, "ceiling": 11},
        )  # fmt: skip
        AuditLog.objects.create(actor=w.staff, actor_name="staffer", action=f"test.{k}", object_type="x", object_id=k)
        factories.UserFactory(organization=w.org, role="viewer")
        Invitation.objects.create(
            organization=w.org, email=f"i{k}-{w.org.pk}@acme.example", token_hash=f"{w.org.pk}-{k}",
            created_at=w.now, expires_at=w.now + timedelta(days=7),
        )  # fmt: skip


@pytest.mark.parametrize("size", [3, 60])
def test_it_bounds_the_queries_of_every_customer_page(client, django_assert_max_num_queries, size):
    with time_machine.travel(factories.NOW, tick=False):
        w = world(factories.NOW, devices=size)
        grow(w, size)
        client.force_login(w.owner, backend=MODEL_BACKEND)
        for name, url in pages(w).items():
            with django_assert_max_num_queries(MAX_QUERIES, info=name):
                assert client.get(url).status_code == 200


@pytest.mark.parametrize("user", ["owner", "staff"])
def test_it_runs_the_same_queries_at_two_sizes(client, user):
    counts = {}
    with time_machine.travel(factories.NOW, tick=False):
        for size in (3, 60):
            w = world(factories.NOW, devices=size, tag=str(size))
            grow(w, size)
            client.force_login(getattr(w, user), backend=MODEL_BACKEND)
            urls = pages(w)
            if user == "staff":  # the dashboard, and every customer page staff may read
                urls = {k: v for k, v in urls.items() if not k.startswith(("release", "home"))}
                urls["staff"] = reverse("portal:staff_dashboard")
            counts[size] = {name: count_queries(client, url) for name, url in urls.items()}
            assert Decision.objects.filter(project=w.project).count() >= size
    # A list that fits on one page is not counted (portal.paging: its rows say how long it is):
    # at 3 devices the device lists run one query fewer; at 60 the count is back, capped.
    for name in ("devices", "devices filtered"):
        assert counts[3].pop(name) == counts[60].pop(name) - 1, name
    assert counts[3] == counts[60]


def test_it_bounds_the_staff_dashboard(client, django_assert_max_num_queries):
    with time_machine.travel(factories.NOW, tick=False):
        w = world(factories.NOW, devices=40)
        grow(w, 40)
        client.force_login(w.staff, backend=MODEL_BACKEND)
        with django_assert_max_num_queries(MAX_QUERIES):
            assert client.get(reverse("portal:staff_dashboard")).status_code == 200

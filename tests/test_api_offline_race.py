"""Offline registrations obey the seat limit under concurrency like online authorizations
(SPEC section 12): 50 simultaneous offline registrations and online authorizations, mixed, at an
item with 10 seats (grace 10 %) admit exactly 11, on PostgreSQL with real connections."""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from devices.models import Device
from devices.offline import register_offline_for_key
from devices.outcomes import Refusal
from tests import factories
from tests.factories import NOW, auth_body, post

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_rate_limits", "frozen", "postgres_only"),
    pytest.mark.slow,
    pytest.mark.postgres,
]

RUNS = int(os.environ.get("RACE_RUNS", "5"))
THREADS = 50


def one_run(run: int) -> None:
    item = factories.LicenseItemFactory(quantity=10, device_grace_percent=10)
    key = item.project.license_key
    barrier = threading.Barrier(THREADS)

    def one(n: int) -> str:
        try:
            barrier.wait(timeout=30)
            if n % 2:
                request = {"device_uuid": f"off-{run}-{n}", "product": "dbr", "client_type": "desktop",
                           "requested_at": "2026-11-27T17:00:00Z"}  # fmt: skip
                try:
                    register_offline_for_key(key, json.dumps(request), now=NOW, actor="cli:race")
                    return "ok"
                except Refusal as refusal:
                    return str(refusal.code)
            response = post(Client(), "authorize", auth_body(item.project, f"on-{run}-{n}"))
            return "ok" if response.status_code == 200 else str(response.json()["error"]["code"])
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(one, range(THREADS)))
    assert results.count("ok") == 11, results
    assert set(results) == {"ok", "120"}
    holding = Device.objects.filter(item=item, state=Device.ACTIVE, active_until__gt=NOW)
    assert holding.count() == 11


def test_mixed_offline_and_online_admit_exactly_eleven():
    for run in range(RUNS):
        one_run(run)

"""A schemathesis run over /api/v1/openapi.json against the Django WSGI app: whatever the shape of
a request (positive and negative examples generated from the document), no 500, and every answer
conforms to the document (status code documented, body valid against its schema).

Two thirds of the positive examples are steered to a real project (the license key of items of
every option, an origin in its licensed domain, for usage and release a device authorized
beforehand, the current slot and a printable report_id), so that they reach the rules of the items and not only the shape and key checks.
Rate limits are off so that the examples reach the rules (the limits have their own tests).
The run prints a summary: examples and status codes per operation and mode."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
# Per operation and mode (3 operations x 2 modes): ~20 s. SCHEMA_EXAMPLES=1000 for a longer run.
MAX_EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", "120"))
EXPECTED = {"POST /api/v1/authorize", "POST /api/v1/usage", "POST /api/v1/release"}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@pytest.fixture
def project():
    """One project holding an item of every option: the target of the steered requests."""
    project = factories.ProjectFactory()
    lic = factories.LicenseFactory(organization=project.organization)
    for option, product in [
        ("per_client_device", "dbr"),
        ("per_concurrent_device", "dlr"),
        ("per_server", "dbr"),
        ("per_barcode_scan", "dbr"),
        ("per_page", "dwt"),
        ("per_domain", "dwt"),
    ]:
        factories.LicenseItemFactory(option=option, product=product, project=project, license=lic)
    cache = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"schema-{uuid.uuid4().hex}"}
    with override_settings(API_RATE_LIMIT="0", API_RATE_LIMIT_ADDRESS="0", CACHES={"default": cache}):
        # Devices already authorized, so that steered usage reports and releases reach the rules.
        for device_uuid, product, client_type, extra in AUTHORIZED:
            body = {"license_key": project.license_key, "device_uuid": device_uuid, "product": product}
            response = Client().post(
                "/api/v1/authorize", body | {"client_type": client_type} | extra, content_type="application/json"
            )
            assert response.status_code == 200, response.content
        yield project


AUTHORIZED = [
    ("steer-desktop", "dbr", "desktop", {}),
    ("steer-concurrent", "dlr", "desktop", {}),
    ("steer-server", "dbr", "server", {"edition": "server"}),
    ("steer-pages", "dwt", "desktop", {}),
    ("steer-web", "dwt", "web", {"origin": "https://www.example.com"}),
]


def current_slot() -> str:
    now = int(time.time())
    return datetime.fromtimestamp(now - now % 180, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def steer(case, project) -> None:
    body = case.body
    rng = random.Random(repr(body))
    if not isinstance(body, dict) or rng.random() < 1 / 3:
        return
    if isinstance(body.get("device_uuid"), str) and "client_type" not in body:  # usage, release
        body["device_uuid"] = rng.choice(AUTHORIZED)[0]
    if isinstance(body.get("license_key"), str):
        body["license_key"] = project.license_key
    if isinstance(body.get("slot_start"), str):
        body["slot_start"] = current_slot()
    if body.get("client_type") == "web" or isinstance(body.get("origin"), str):
        body["origin"] = "https://App.Example.com:443"  # the per_domain item's domain
    if isinstance(body.get("report_id"), str) and not body["report_id"].isprintable():
        body["report_id"] = "".join(c for c in body["report_id"] if c.isprintable()) or "r"


def fuzz(operation, mode: GenerationMode, project, statuses: Counter) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case):
        if mode is GenerationMode.POSITIVE:  # steering could repair a negative example
            steer(case, project)
        response = case.call()
        case.validate_response(response, checks=CHECKS)
        statuses[(operation.label, mode.value, response.status_code)] += 1

    run()


@pytest.fixture
def keep_test_connection():
    """The WSGI handler closes the database connection at the end of each request, which would
    end the test's transaction; Django's test client avoids that the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_the_api_never_fails_and_keeps_to_its_document(project, keep_test_connection):
    from dls_admin.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= EXPECTED
    statuses: Counter = Counter()
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, project, statuses)
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {sum(statuses.values())} requests in {elapsed:.1f} s, no failure")
    for (label, mode, status), n in sorted(statuses.items()):
        print(f"  {label:26} {mode:8} {status}: {n}")
    reached = {(label, status) for (label, _, status) in statuses}
    # The steering works: the rules were reached, not only the request-shape and key checks.
    assert ("POST /api/v1/authorize", 200) in reached
    assert ("POST /api/v1/usage", 200) in reached

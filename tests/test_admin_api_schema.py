"""A schemathesis run over /api/admin/v1/openapi.json against the Django WSGI app with a staff
write token: whatever the request (positive and negative examples from the document), no 500,
every status documented and every body valid against its schema.

Half of the positive examples are steered to real objects (a project, a license, an
organization, a webhook endpoint and one of its deliveries, a device) so that they reach the
services and not only the 404s. A few hundred requests in all (``ADMIN_SCHEMA_EXAMPLES`` per
operation and mode)."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter

import pytest
import schemathesis
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from licenses.events import emit
from tests import factories
from tests.admin_api import token
from tests.test_schema_api import keep_test_connection  # noqa: F401  (a fixture)
from usage.webhooks.dispatch import dispatch_events
from usage.webhooks.endpoints import create_endpoint
from usage.webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
MAX_EXAMPLES = int(os.environ.get("ADMIN_SCHEMA_EXAMPLES", "6"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@pytest.fixture
def targets(now):
    w = factories.world(now)
    cache = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"adm-{uuid.uuid4().hex}"}
    with override_settings(ADMIN_API_RATE_LIMIT="0", WEBHOOK_ALLOW_PRIVATE_HOSTS=True, CACHES={"default": cache}):
        hook, _ = create_endpoint(
            url="http://127.0.0.1:9/h", events=None, organization=None, created_by_name="t", now=now
        )
        emit("license.created", {}, organization=None, now=now)
        dispatch_events(now=now)
        yield {
            "secret": token("write"),
            "project": str(w.project.pk),
            "license_id": w.seats.license.license_id,
            "organization": w.org.id,
            "webhook": str(hook.pk),
            "delivery_id": str(WebhookDelivery.objects.get().pk),
            "device_uuid": w.device.device_uuid,
        }


def steer(case, targets) -> None:
    params = case.path_parameters or {}
    rng = random.Random(repr(sorted(params.items())) + case.path)
    if rng.random() < 0.5:
        return
    path = case.path
    for name in params:
        if name == "id":
            if path.startswith("/organizations"):
                params[name] = targets["organization"]
            elif path.startswith("/webhooks"):
                params[name] = targets["webhook"]
            else:
                params[name] = targets["project"]
        elif name in targets:
            params[name] = targets[name]


def fuzz(operation, mode, targets, statuses: Counter) -> None:
    headers = {"Authorization": f"Bearer {targets['secret']}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case):
        if mode is GenerationMode.POSITIVE:
            steer(case, targets)
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)
        statuses[(operation.label, response.status_code)] += 1

    run()


def test_the_admin_api_never_fails_and_keeps_to_its_document(targets, keep_test_connection):  # noqa: F811
    from dls_admin.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/admin/v1/openapi.json", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 24
    statuses: Counter = Counter()
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, targets, statuses)
    print(f"\nschemathesis: {sum(statuses.values())} requests in {time.monotonic() - started:.1f} s, no failure")
    for (label, status), n in sorted(statuses.items()):
        print(f"  {label:62} {status}: {n}")
    reached = {(label, status) for label, status in statuses}
    assert ("GET /api/admin/v1/projects/{id}", 200) in reached  # the steering reaches real objects

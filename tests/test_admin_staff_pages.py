"""The licenses staff pages share one section base (templates/admin/licenses/staff_page.html):
each shows Home › the model's list › (its license) › its title, and its form's fields once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from licenses.models import License
from licenses.services import import_license
from tests.factories import license_file, staff_client


def crumbs(body: str) -> list[str]:
    """The breadcrumbs' texts, in order."""
    block = re.search(r'<div class="breadcrumbs">(.*?)</div>', body, re.S)
    assert block, "no breadcrumbs"
    parts = [re.sub(r"<[^>]+>", "", part).strip() for part in block.group(1).split("&rsaquo;")]
    return [" ".join(part.split()) for part in parts]


@pytest.fixture
def license(db):
    doc = license_file(
        items=[{"product": "dbr", "edition": "javascript", "option": "per_client_device", "quantity": 3}]
    )
    doc["starts_at"] = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    del doc["expires_at"]
    return License.objects.get(license_id=import_license(doc, now=timezone.now())["license_id"])


@pytest.mark.django_db
def test_it_shows_the_import_page_under_the_app_and_the_list():
    client, _ = staff_client()
    body = client.get("/admin/licenses/license/import/").content.decode()
    assert crumbs(body) == ["Home", "Licenses", "Licenses", "Import license file"]
    assert body.count('<fieldset class="module aligned">') == 1 and 'value="Import"' in body


def test_it_shows_renew_and_status_under_their_license(license):
    client, _ = staff_client()
    renew = client.get(f"/admin/licenses/license/{license.pk}/renew/").content.decode()
    assert crumbs(renew) == ["Home", "Licenses", license.license_id, f"Renew {license.license_id}"]
    assert renew.count('<fieldset class="module aligned">') == 1 and 'value="Renew"' in renew
    status = client.get(f"/admin/licenses/license/{license.pk}/status/?status=suspended").content.decode()
    assert crumbs(status)[:3] == ["Home", "Licenses", license.license_id]


def test_it_asks_the_option_of_a_new_quota_under_the_list(license):
    client, _ = staff_client()
    body = client.get(f"/admin/licenses/license/{license.pk}/add-quota/").content.decode()
    assert crumbs(body) == ["Home", "Licenses", f"Add quota to {license.license_id}: choose the option"]
    assert 'name="option"' in body

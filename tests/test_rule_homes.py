"""Each SPEC section 4 rule has one home; these tests pin it at its edges through every path that
shows or uses it (the device API, the portal, the jobs), so that editing any copy to nonsense
fails here."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests import factories
from tests.factories import MODEL_BACKEND, authorize, report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def page_text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.mark.parametrize(
    ("quantity", "grace", "refused_from"),
    [(5, 5, 6), (1000, 5, 1050), (20, 5, 21), (100, 0, 100), (3, 10, 4), (2_147_483_647, 5, 2_254_857_830)],
)
def test_quota_refused_from_is_the_api_limit_on_the_portal(client, quantity, grace, refused_from):
    """SPEC 4: refused once used >= quantity x (100 + grace) / 100, exact. The API refuses the
    report that reaches ``refused_from``; the portal's meter says "refused from" that number."""
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=quantity, quota_grace_percent=grace)
    assert item.quota_refused_from(quantity) == refused_from
    if refused_from <= 1_000_000:
        authorize(client, item.project)
        below = report(client, item.project, report_id="a", barcode_scans=refused_from - 1).json()
        assert below["allowed"] is True
        reach = report(client, item.project, report_id="b", barcode_scans=1).json()
        assert reach["allowed"] is False and reach["error"]["code"] == 120
    owner = factories.UserFactory()
    factories.MembershipFactory(user=owner, organization=item.project.organization, role="owner")
    client.force_login(owner, backend=MODEL_BACKEND)
    page = page_text(client.get(reverse("portal:home")))
    assert f"refused from {refused_from:,}" in page

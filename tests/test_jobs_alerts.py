from datetime import timedelta

import pytest
from django.core import mail

from licenses.models import AlertRecipient
from tests import factories
from usage import jobs
from usage.models import AlertSent

pytestmark = pytest.mark.django_db


def sent(item):
    return sorted(AlertSent.objects.filter(item=item).values_list("kind", "threshold"))


def test_it_sends_one_email_per_organization_listing_each_item_that_crossed(now):
    org = factories.OrganizationFactory(name="Acme Corp")
    AlertRecipient.objects.create(organization=org, email="ops@acme.test")
    lic = factories.LicenseFactory(organization=org)
    scans = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000, license=lic)
    pages = factories.LicenseItemFactory(per_page=True, product="dwt", quantities={"core": 100, "ocr": 10}, license=lic)
    factories.QuotaCounterFactory(item=scans, metric="barcode_scans", used=600)  # exactly 60 %
    factories.QuotaCounterFactory(item=pages, metric="pages_core", used=59)  # below 60 %
    factories.QuotaCounterFactory(item=pages, metric="pages_ocr", used=10)  # 100 %: 60, 80 and 100 at once
    other = factories.LicenseItemFactory(per_barcode_scan=True, quantity=10)  # another organization
    factories.QuotaCounterFactory(item=other, metric="barcode_scans", used=8)
    factories.UserFactory(organization=other.license.organization, role="owner", email="boss@other.test")

    summary = jobs.send_usage_alerts(now=now)

    assert summary["emails"] == 2
    assert sorted(tuple(m.to) for m in mail.outbox) == [("boss@other.test",), ("ops@acme.test",)]
    acme = next(m for m in mail.outbox if m.to == ["ops@acme.test"])
    assert "Acme Corp" in acme.subject and "2 items" in acme.subject
    assert f"Item {scans.pk} " in acme.body and "barcode scans at 60 % (600 of 1000)" in acme.body
    assert "pages (OCR) at 100 % (10 of 10), past the 100 % threshold" in acme.body
    assert "pages (core)" not in acme.body
    html, mimetype = acme.alternatives[0]
    assert mimetype == "text/html" and "Acme Corp" in html
    assert sent(scans) == [("barcode_scans", 60)]
    assert sent(pages) == [("pages_ocr", 60), ("pages_ocr", 80), ("pages_ocr", 100)]


def test_a_threshold_crossed_twice_alerts_once(now):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    factories.UserFactory(organization=item.license.organization, role="owner", email="o@x.test")
    factories.QuotaCounterFactory(item=item, metric="barcode_scans", used=61)
    jobs.send_usage_alerts(now=now)
    factories.QuotaCounterFactory(item=item, metric="barcode_scans", used=70)  # still past 60, not yet 80
    jobs.send_usage_alerts(now=now + timedelta(minutes=10))
    assert len(mail.outbox) == 1

    factories.QuotaCounterFactory(item=item, metric="barcode_scans", used=80)
    jobs.send_usage_alerts(now=now + timedelta(minutes=20))
    assert len(mail.outbox) == 2
    assert "past the 80 % threshold" in mail.outbox[1].body
    assert sent(item) == [("barcode_scans", 60), ("barcode_scans", 80)]


def test_seats_count_active_devices_that_still_hold_their_seat(now):
    item = factories.LicenseItemFactory(per_client_device=True, quantity=5)
    factories.UserFactory(organization=item.license.organization, role="owner", email="o@x.test")
    for _ in range(3):
        factories.DeviceFactory(item=item, active_until=now + timedelta(days=1))
    factories.DeviceFactory(item=item, active_until=now)  # ran out at this instant: not counted
    factories.DeviceFactory(item=item, state="released", active_until=now + timedelta(days=1))

    jobs.send_usage_alerts(now=now)
    assert sent(item) == [("seats", 60)]
    assert "seats at 60 % (3 of 5)" in mail.outbox[0].body


def test_overuse_budget_of_a_concurrent_item(now):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=2, overuse_budget=10)
    factories.UserFactory(organization=item.license.organization, role="owner", email="o@x.test")
    factories.QuotaCounterFactory(item=item, metric="overuse_spent", used=8)
    jobs.send_usage_alerts(now=now)
    assert sent(item) == [("overuse", 60), ("overuse", 80)]
    assert "overuse budget (device-slots) at 80 % (8 of 10)" in mail.outbox[0].body


def test_owners_get_it_when_there_is_no_alert_recipient_and_viewers_do_not(now):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=10)
    org = item.license.organization
    factories.UserFactory(organization=org, role="owner", email="owner1@x.test")
    factories.UserFactory(organization=org, role="owner", email="owner2@x.test")
    factories.UserFactory(organization=org, role="viewer", email="viewer@x.test")
    factories.QuotaCounterFactory(item=item, metric="barcode_scans", used=10)
    jobs.send_usage_alerts(now=now)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner1@x.test", "owner2@x.test"]


def test_items_of_licenses_out_of_term_or_suspended_do_not_alert(now):
    expired = factories.LicenseFactory(starts_at=now - timedelta(days=400), expires_at=now)
    suspended = factories.LicenseFactory(status="suspended")
    for lic in (expired, suspended):
        item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=10, license=lic)
        factories.QuotaCounterFactory(item=item, metric="barcode_scans", used=10)
    assert jobs.send_usage_alerts(now=now)["alerts"] == 0
    assert mail.outbox == []


def test_a_failed_send_is_retried_by_the_next_run(now, monkeypatch):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=10)
    factories.UserFactory(organization=item.license.organization, role="owner", email="o@x.test")
    factories.QuotaCounterFactory(item=item, metric="barcode_scans", used=10)

    def broken(*args, **kwargs):
        raise OSError("SMTP down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", broken)
    assert jobs.send_usage_alerts(now=now)["failed"] == 1
    assert sent(item) == []
    monkeypatch.undo()
    assert jobs.send_usage_alerts(now=now)["emails"] == 1
    assert sent(item) == [("barcode_scans", 60), ("barcode_scans", 80), ("barcode_scans", 100)]

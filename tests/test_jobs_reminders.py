from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from licenses.models import AlertRecipient
from tests import factories
from usage import jobs
from usage.models import ReminderSent

pytestmark = pytest.mark.django_db

EXPIRES = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def lic(**kw):
    license = factories.LicenseFactory(starts_at=EXPIRES - timedelta(days=365), expires_at=EXPIRES, **kw)
    AlertRecipient.objects.create(organization=license.organization, email="billing@x.test")
    return license


def reminders(license):
    return sorted(ReminderSent.objects.filter(license=license).values_list("days_before", flat=True))


def test_it_reminds_on_the_exact_day_and_not_the_day_before():
    license = lic()
    jobs.send_renewal_reminders(now=EXPIRES - timedelta(days=7, hours=12))  # 7 days before, UTC dates
    assert reminders(license) == [7]
    # The day before: nothing (the 7-day reminder is done, the day itself has not come).
    assert jobs.send_renewal_reminders(now=datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC))["emails"] == 0
    # On the day, in UTC, even at 00:00 before the expiry time.
    assert jobs.send_renewal_reminders(now=datetime(2027, 3, 1, 0, 0, tzinfo=UTC))["emails"] == 1
    assert reminders(license) == [0, 7]
    assert "expires today" in mail.outbox[-1].subject
    assert mail.outbox[-1].to == ["billing@x.test"]


def test_each_reminder_goes_once_at_90_60_30_14_7_and_0_days():
    license = lic()
    for days_before in range(120, -3, -1):
        now = EXPIRES - timedelta(days=days_before, hours=6)  # the daily run at 06:00 UTC
        jobs.send_renewal_reminders(now=now)
        jobs.send_renewal_reminders(now=now + timedelta(hours=1))  # a second run the same day
    assert reminders(license) == [0, 7, 14, 30, 60, 90]
    subjects = [m.subject for m in mail.outbox]
    assert subjects == [
        f"[DLS] License {license.license_id} expires in 90 days",
        f"[DLS] License {license.license_id} expires in 60 days",
        f"[DLS] License {license.license_id} expires in 30 days",
        f"[DLS] License {license.license_id} expires in 14 days",
        f"[DLS] License {license.license_id} expires in 7 days",
        f"[DLS] License {license.license_id} expires today",
    ]
    assert "2027-03-01 12:00 UTC" in mail.outbox[0].body
    assert mail.outbox[0].alternatives[0][1] == "text/html"


def test_a_day_the_job_did_not_run_is_caught_up_the_next_day():
    license = lic()
    jobs.send_renewal_reminders(now=EXPIRES - timedelta(days=29))  # missed day 30
    assert reminders(license) == [30]
    assert "expires in 29 days" in mail.outbox[0].subject


def test_renewed_revoked_and_expired_licenses_get_none():
    renewed = lic()
    renewal = factories.LicenseFactory(
        organization=renewed.organization, starts_at=EXPIRES, expires_at=EXPIRES + timedelta(days=365)
    )
    renewal.renewal_of = renewed
    renewal.save()
    revoked = lic(status="revoked")
    jobs.send_renewal_reminders(now=EXPIRES - timedelta(days=7))
    jobs.send_renewal_reminders(now=EXPIRES + timedelta(days=1))
    assert reminders(renewed) == [] and reminders(revoked) == []
    assert mail.outbox == []


def test_the_day_it_expired_says_so_when_the_run_comes_after_the_expiry_time():
    license = lic()
    jobs.send_renewal_reminders(now=EXPIRES + timedelta(hours=1))
    assert reminders(license) == [0]
    assert mail.outbox[0].subject == f"[DLS] License {license.license_id} expired"

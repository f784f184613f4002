from datetime import timedelta

import pytest
from django.urls import reverse

from tests import factories
from usage.models import AlertSent, ConcurrencyRollup, JobState, ReminderSent, UsageRollup

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = factories.UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_staff_see_rollups_alerts_reminders_and_job_state_read_only(staff_client, now):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=3)
    ConcurrencyRollup.objects.create(item=item, slot_start=now, active_devices=2, limit=3, overuse_devices=0)
    UsageRollup.objects.create(item=item, granularity="2h", bucket_start=now, metric="barcode_scans", count=7)
    alert = AlertSent.objects.create(item=item, kind="overuse", threshold=80, sent_at=now)
    ReminderSent.objects.create(license=item.license, days_before=30, sent_at=now - timedelta(days=1))
    JobState.objects.create(name="rollup_usage", watermark=now)

    for model in ("concurrencyrollup", "usagerollup", "alertsent", "remindersent", "jobstate"):
        response = staff_client.get(reverse(f"admin:usage_{model}_changelist"))
        assert response.status_code == 200, model
        assert "to view" in response.content.decode()  # "Select ... to view": no change permission
        assert reverse(f"admin:usage_{model}_add") not in response.content.decode()
    page = staff_client.get(reverse("admin:usage_alertsent_changelist")).content.decode()
    assert item.license.organization.name in page
    # The change page shows the record without a save button; posting changes nothing.
    url = reverse("admin:usage_alertsent_change", args=[alert.pk])
    assert 'name="_save"' not in staff_client.get(url).content.decode()
    staff_client.post(url, {"threshold": 60})
    alert.refresh_from_db()
    assert alert.threshold == 80
    assert staff_client.post(reverse("admin:usage_alertsent_delete", args=[alert.pk])).status_code == 403


def test_a_superuser_can_delete_a_job_state_to_rebuild_its_rollups(staff_client, now):
    state = JobState.objects.create(name="rollup_usage", watermark=now)
    response = staff_client.post(reverse("admin:usage_jobstate_delete", args=[state.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not JobState.objects.exists()


def test_customers_cannot_open_it(client):
    client.force_login(
        factories.UserFactory(organization=factories.OrganizationFactory()),
        backend="django.contrib.auth.backends.ModelBackend",
    )
    response = client.get(reverse("admin:usage_concurrencyrollup_changelist"))
    assert response.status_code == 302

"""Failed-authorization alerts in send_usage_alerts: the share of refused authorizations of a
project over the last hour crossing 10/20/40/60/80/100 % (at least 20 in the hour), one email per
organization per run naming the top rules, each threshold once per project per day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from devices.models import Decision
from tests import factories
from tests.factories import NOW
from usage import jobs
from usage.models import RefusalAlertSent

pytestmark = pytest.mark.django_db


def decisions(device, *, allowed: int, refused: dict[str, int], at=NOW - timedelta(minutes=30)):
    rows = [
        Decision(project=device.project, device=device, device_uuid=device.device_uuid, item=device.item,
                 endpoint=Decision.AUTHORIZE, allowed=True, rule="seat_taken", created_at=at)
        for _ in range(allowed)
    ]  # fmt: skip
    for rule, n in refused.items():
        code = {"seats_exhausted": 120, "allowed_domains": 103, "session_password_wrong": 102}[rule]
        rows += [
            Decision(project=device.project, device=device, device_uuid=device.device_uuid, item=device.item,
                     endpoint=Decision.AUTHORIZE, allowed=False, rule=rule, code=code, created_at=at)
            for _ in range(n)
        ]  # fmt: skip
    Decision.objects.bulk_create(rows)


@pytest.fixture
def device():
    d = factories.DeviceFactory()
    org = d.project.organization
    org.alert_recipients.create(email="ops@acme.test")
    return d


def test_a_crossed_share_sends_one_email_naming_the_top_rules(device):
    decisions(device, allowed=15, refused={"seats_exhausted": 4, "allowed_domains": 1})  # 5 of 20: 25 %
    summary = jobs.send_usage_alerts(now=NOW)
    assert summary["refusal_emails"] == 1 and summary["refusal_alerts"] == 2  # 10 % and 20 %
    (message,) = mail.outbox
    assert message.to == ["ops@acme.test"] and "Refused authorizations" in message.subject
    assert (
        f'Project "{device.project.name}": 5 of 20 authorizations refused (25 %), past the 20 % threshold'
        in message.body
    )
    assert message.body.index("seats_exhausted (code 120): 4") < message.body.index("allowed_domains (code 103): 1")
    again = jobs.send_usage_alerts(now=NOW + timedelta(minutes=10))
    assert again["refusal_emails"] == 0 and len(mail.outbox) == 1  # once per threshold per day


def test_a_higher_threshold_the_same_day_alerts_again(device):
    decisions(device, allowed=18, refused={"seats_exhausted": 2})  # 10 %
    jobs.send_usage_alerts(now=NOW)
    decisions(device, allowed=0, refused={"session_password_wrong": 10})  # 12 of 30: 40 %
    summary = jobs.send_usage_alerts(now=NOW + timedelta(minutes=1))
    assert summary["refusal_alerts"] == 2 and len(mail.outbox) == 2  # 20 and 40
    assert "past the 40 % threshold" in mail.outbox[1].body


def test_fewer_than_20_authorizations_page_no_one(device):
    decisions(device, allowed=0, refused={"seats_exhausted": 19})  # 100 % of 19
    assert jobs.send_usage_alerts(now=NOW)["refusal_emails"] == 0 and not mail.outbox


def test_only_the_last_hour_counts(device):
    decisions(device, allowed=0, refused={"seats_exhausted": 30}, at=NOW - timedelta(minutes=61))
    decisions(device, allowed=20, refused={})
    assert jobs.send_usage_alerts(now=NOW)["refusal_emails"] == 0


def test_the_next_day_the_threshold_alerts_once_more(device):
    decisions(device, allowed=10, refused={"seats_exhausted": 10})  # 50 %
    jobs.send_usage_alerts(now=NOW)
    decisions(device, allowed=10, refused={"seats_exhausted": 10}, at=NOW + timedelta(days=1) - timedelta(minutes=5))
    jobs.send_usage_alerts(now=NOW + timedelta(days=1))
    assert len(mail.outbox) == 2
    assert RefusalAlertSent.objects.filter(threshold=40).count() == 2


def test_a_refused_usage_report_is_not_an_authorization(device):
    decisions(device, allowed=20, refused={})
    for _ in range(10):  # were these authorizations, 10 of 30 would be past 20 %
        Decision.objects.create(project=device.project, device=device, device_uuid="x", endpoint=Decision.USAGE,
                                allowed=False, rule="quota_exhausted", code=120, created_at=NOW - timedelta(minutes=1))  # fmt: skip
    assert jobs.send_usage_alerts(now=NOW)["refusal_emails"] == 0

"""The audit log is append-only through the ORM: no update, no delete, by instance or queryset."""

from __future__ import annotations

import pytest
from django.db import transaction

from licenses.models import AuditLog
from licenses.services import record_audit
from tests import factories


@pytest.fixture
def entry(db):
    organization = factories.OrganizationFactory()
    return record_audit(
        actor=factories.UserFactory(is_staff=True),
        action="license.suspend",
        obj=factories.LicenseFactory(organization=organization),
        before={"status": "active"},
        after={"status": "suspended"},
    )


@pytest.mark.django_db
def test_it_records_who_what_when_before_and_after(entry):
    stored = AuditLog.objects.get()
    assert stored.actor == entry.actor and stored.actor_name == entry.actor.username
    assert (stored.action, stored.object_type) == ("license.suspend", "license")
    assert stored.object_id.startswith("L-TEST-")
    assert stored.organization_id == entry.organization_id is not None
    assert (stored.before, stored.after) == ({"status": "active"}, {"status": "suspended"})
    assert stored.created_at is not None


@pytest.mark.django_db
def test_it_names_the_command_line_and_the_system_as_actors(db):
    license = factories.LicenseFactory()
    by_cli = record_audit(actor="cli:root", action="license.import", obj=license, before=None, after={})
    by_system = record_audit(actor=None, action="license.import", obj=license, before=None, after={})
    assert (by_cli.actor, by_cli.actor_name) == (None, "cli:root")
    assert (by_system.actor, by_system.actor_name) == (None, "system")


@pytest.mark.django_db
def test_it_refuses_to_change_an_entry(entry):
    entry.action = "license.resume"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        AuditLog.objects.filter(pk=entry.pk).update(action="license.resume")
    with pytest.raises(PermissionError), transaction.atomic():  # bulk_update breaks the transaction it is in
        AuditLog.objects.bulk_update([entry], ["action"])
    assert AuditLog.objects.get().action == "license.suspend"


@pytest.mark.django_db
def test_it_refuses_to_delete_an_entry(entry):
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditLog.objects.all().delete()
    assert AuditLog.objects.count() == 1

"""Staff actions as services: renew, add quota, suspend/resume/revoke, reorder; each audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from licenses.models import AuditLog, License, LicenseItem
from licenses.services import add_quota, import_license, renew_license, reorder_items, set_license_status
from tests import factories
from tests.factories import license_file, row_counts


@pytest.fixture
def staff(db):
    return factories.UserFactory(username="clerk", is_staff=True)


@pytest.fixture
def issued(db, now):
    result = import_license(
        license_file(
            license_id="L-ORIG",
            project="acme-web",
            items=[
                {"product": "dbr", "edition": "javascript", "option": "per_client_device", "quantity": 30},
                {"product": "dwt", "option": "per_page", "quantities": {"core": 1000}},
            ],
        ),
        now=now,
    )
    return License.objects.get(license_id=result["license_id"]), result


@pytest.mark.django_db
def test_it_renews_into_the_same_project_with_the_same_key(issued, staff, now):
    old, result = issued
    new = renew_license(license=old, expires_at=old.expires_at + timedelta(days=365), actor=staff, now=now)
    assert new.license_id == "L-ORIG-R1"
    assert new.renewal_of == old
    assert new.starts_at == old.expires_at  # the new term continues the old one
    assert new.status == License.ACTIVE
    assert [(i.product, i.option, i.quantity, i.quantities, i.edition) for i in new.items.order_by("id")] == [
        (i.product, i.option, i.quantity, i.quantities, i.edition) for i in old.items.order_by("id")
    ]
    assert {i.project.license_key for i in new.items.all()} == {result["license_key"]}
    entry = AuditLog.objects.get(action="license.renew")
    assert entry.actor == staff and entry.before["license_id"] == "L-ORIG" and entry.after["license_id"] == "L-ORIG-R1"


@pytest.mark.django_db
def test_it_starts_the_renewal_now_when_the_old_term_has_ended(issued, staff, now):
    old, _ = issued
    later = old.expires_at + timedelta(days=10)
    new = renew_license(license=old, expires_at=later + timedelta(days=365), actor=staff, now=later)
    assert new.starts_at == later


@pytest.mark.django_db
def test_it_numbers_renewals_and_takes_a_given_id(issued, staff, now):
    old, _ = issued
    expiry = old.expires_at + timedelta(days=365)
    assert renew_license(license=old, expires_at=expiry, actor=staff, now=now).license_id == "L-ORIG-R1"
    assert renew_license(license=old, expires_at=expiry, actor=staff, now=now).license_id == "L-ORIG-R2"
    assert renew_license(license=old, expires_at=expiry, license_id="L-NEW", actor=staff, now=now).license_id == "L-NEW"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"expires_at_days": -1}, "expires_at"),
        ({"license_id": "L-ORIG"}, "license_id"),
    ],
)
def test_it_refuses_a_bad_renewal_and_changes_nothing(issued, staff, now, kwargs, field):
    old, _ = issued
    before = row_counts()
    with pytest.raises(ValidationError) as e:
        renew_license(
            license=old,
            expires_at=old.expires_at + timedelta(days=kwargs.get("expires_at_days", 365)),
            license_id=kwargs.get("license_id"),
            actor=staff,
            now=now,
        )
    assert field in e.value.message_dict
    assert row_counts() == before


@pytest.mark.django_db
def test_it_refuses_to_renew_a_revoked_license(issued, staff, now):
    old, _ = issued
    set_license_status(license=old, status=License.REVOKED, actor=staff, now=now)
    with pytest.raises(ValidationError):
        renew_license(license=old, expires_at=old.expires_at + timedelta(days=365), actor=staff, now=now)


@pytest.mark.django_db
def test_it_adds_quota_as_a_new_item_under_the_same_key(issued, staff, now):
    license, result = issued
    project = license.items.first().project
    item = add_quota(
        project=project,
        license=license,
        item_fields={"product": "dbr", "edition": "javascript", "option": "per_client_device", "quantity": 20},
        actor=staff,
        now=now,
    )
    assert (item.quantity, item.project.license_key, item.license) == (20, result["license_key"], license)
    assert project.items.count() == 3
    entry = AuditLog.objects.get(action="item.add_quota")
    assert entry.after["quantity"] == 20 and entry.actor == staff and entry.organization_id == "216998"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, field, rule",
    [
        ({"product": "dbr", "option": "per_page", "quantities": {"core": 1}}, "option", "per_page applies only to dwt"),
        ({"product": "dbr", "option": "per_client_device", "quantity": 0}, "quantity", "must be an integer >= 1"),
        (
            {"product": "dbr", "option": "per_client_device", "quantity": 5, "domain": "x.com"},
            "domain",
            "does not apply",
        ),
    ],
)
def test_it_refuses_bad_quota_with_the_rule(issued, staff, now, fields, field, rule):
    license, _ = issued
    before = row_counts()
    with pytest.raises(ValidationError) as e:
        add_quota(project=license.items.first().project, license=license, item_fields=fields, actor=staff, now=now)
    assert rule in " ".join(e.value.message_dict[field])
    assert row_counts() == before


@pytest.mark.django_db
def test_it_refuses_quota_in_a_project_of_another_organization(issued, staff, now):
    license, _ = issued
    with pytest.raises(ValidationError) as e:
        add_quota(
            project=factories.ProjectFactory(),
            license=license,
            item_fields={"product": "dbr", "option": "per_client_device", "quantity": 5},
            actor=staff,
            now=now,
        )
    assert "project" in e.value.message_dict


@pytest.mark.django_db
def test_it_suspends_resumes_and_revokes_with_an_audit_row_each(issued, staff, now):
    license, _ = issued
    set_license_status(license=license, status=License.SUSPENDED, actor=staff, now=now)
    assert License.objects.get(pk=license.pk).status == License.SUSPENDED
    set_license_status(license=license, status=License.ACTIVE, actor=staff, now=now)
    assert License.objects.get(pk=license.pk).status == License.ACTIVE
    set_license_status(license=license, status=License.REVOKED, actor=staff, now=now)
    assert License.objects.get(pk=license.pk).status == License.REVOKED
    entries = list(AuditLog.objects.filter(object_id="L-ORIG", action__startswith="license.").order_by("id"))
    assert [(e.action, e.before["status"], e.after["status"]) for e in entries[1:]] == [
        ("license.suspend", "active", "suspended"),
        ("license.resume", "suspended", "active"),
        ("license.revoke", "active", "revoked"),
    ]
    assert all(e.actor == staff for e in entries[1:])


@pytest.mark.django_db
def test_it_keeps_a_revoked_license_revoked(issued, staff, now):
    license, _ = issued
    set_license_status(license=license, status=License.REVOKED, actor=staff, now=now)
    with pytest.raises(ValidationError):
        set_license_status(license=license, status=License.ACTIVE, actor=staff, now=now)
    assert License.objects.get(pk=license.pk).status == License.REVOKED


@pytest.mark.django_db
def test_it_refuses_an_unknown_status(issued, staff, now):
    license, _ = issued
    with pytest.raises(ValidationError):
        set_license_status(license=license, status="paused", actor=staff, now=now)


@pytest.mark.django_db
def test_it_reorders_items_and_audits_the_order(staff, now):
    license = factories.LicenseFactory(expires_at=now + timedelta(days=100))
    project = factories.ProjectFactory(organization=license.organization)
    soon = factories.LicenseItemFactory(
        project=project,
        license=factories.LicenseFactory(organization=license.organization, expires_at=now + timedelta(days=5)),
    )
    late = factories.LicenseItemFactory(project=project, license=license)
    third = factories.LicenseItemFactory(project=project, license=license)
    assert list(project.items_in_order()) == [soon, late, third]  # by expiry by default

    reorder_items(project=project, item_ids=[str(third.pk), str(late.pk)], actor=staff, now=now)
    assert list(project.items_in_order()) == [third, late, soon]
    assert [i.position for i in LicenseItem.objects.filter(project=project).order_by("id")] == [None, 1, 0]
    entry = AuditLog.objects.get(action="project.reorder")
    assert entry.before["items_in_order"] == [soon.item_id, late.item_id, third.item_id]
    assert entry.after["items_in_order"] == [third.item_id, late.item_id, soon.item_id]


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["other", "nonsense", "twice"])
def test_it_refuses_ids_not_of_the_project(staff, now, bad):
    project = factories.ProjectFactory()
    mine = factories.LicenseItemFactory(project=project)
    other = factories.LicenseItemFactory()
    ids = {"other": [str(mine.pk), str(other.pk)], "nonsense": ["x1"], "twice": [str(mine.pk), str(mine.pk)]}[bad]
    with pytest.raises(ValidationError):
        reorder_items(project=project, item_ids=ids, actor=staff, now=now)
    assert LicenseItem.objects.get(pk=mine.pk).position is None
    assert not AuditLog.objects.filter(action="project.reorder").exists()

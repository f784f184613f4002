"""The audit log in the admin: staff browse it, nobody (superusers included) adds, changes or
deletes an entry; and every staff action made in the admin writes one."""

from __future__ import annotations

import pytest

from licenses.models import AuditLog, License, LicenseItem
from licenses.services import record_audit
from tests import factories
from tests.factories import staff_client


@pytest.fixture
def entry(db):
    return record_audit(
        actor=None,
        action="license.revoke",
        obj=factories.LicenseFactory(),
        before={"status": "active"},
        after={"status": "revoked"},
    )


@pytest.mark.django_db
def test_it_lists_and_shows_entries_to_staff(entry):
    client, _ = staff_client()
    listing = client.get("/admin/licenses/auditlog/")
    assert listing.status_code == 200 and "license.revoke" in listing.content.decode()
    detail = client.get(f"/admin/licenses/auditlog/{entry.pk}/change/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert "revoked" in body and 'name="_save"' not in body  # read-only: no save button


@pytest.mark.django_db
def test_it_lets_a_staff_user_with_the_view_permission_browse_it(entry):
    from django.contrib.auth.models import Permission

    client, user = staff_client(superuser=False)
    user.user_permissions.add(Permission.objects.get(codename="view_auditlog"))
    assert client.get("/admin/licenses/auditlog/").status_code == 200
    assert client.post(f"/admin/licenses/auditlog/{entry.pk}/change/", {"action": "x"}).status_code == 403


@pytest.mark.django_db
def test_it_refuses_to_add_change_or_delete_through_the_admin_even_for_a_superuser(entry):
    client, user = staff_client(superuser=True)
    assert user.is_superuser
    assert client.get("/admin/licenses/auditlog/add/").status_code == 403
    assert client.post("/admin/licenses/auditlog/add/", {"action": "x"}).status_code == 403
    changed = client.post(
        f"/admin/licenses/auditlog/{entry.pk}/change/",
        {"action": "license.resume", "actor_name": "someone", "object_type": "license", "object_id": "x"},
    )
    assert changed.status_code == 403
    assert client.get(f"/admin/licenses/auditlog/{entry.pk}/delete/").status_code == 403
    assert client.post(f"/admin/licenses/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = client.post(
        "/admin/licenses/auditlog/", {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    stored = AuditLog.objects.get()
    assert (stored.action, stored.actor_name) == ("license.revoke", "system")


@pytest.mark.django_db
def test_it_offers_no_delete_action_on_the_list(entry):
    client, _ = staff_client()
    response = client.get("/admin/licenses/auditlog/")
    assert "delete_selected" not in response.content.decode()


@pytest.mark.django_db
def test_it_records_the_suspend_resume_and_revoke_actions_of_the_list(db):
    client, user = staff_client()
    license = factories.LicenseFactory()
    for action, status in [
        ("suspend_licenses", "suspended"),
        ("resume_licenses", "active"),
        ("revoke_licenses", "revoked"),
    ]:
        # "post" is the answer of the revoke action's confirmation page.
        data = {"action": action, "_selected_action": [license.pk], "post": "yes"}
        response = client.post("/admin/licenses/license/", data)
        assert response.status_code == 302
        assert License.objects.get(pk=license.pk).status == status
    actions = list(AuditLog.objects.order_by("id").values_list("action", "actor", "after__status"))
    assert actions == [
        ("license.suspend", user.pk, "suspended"),
        ("license.resume", user.pk, "active"),
        ("license.revoke", user.pk, "revoked"),
    ]


@pytest.mark.django_db
def test_it_records_an_admin_change_of_a_license_with_before_and_after(db):
    client, user = staff_client()
    license = factories.LicenseFactory()
    response = client.post(
        f"/admin/licenses/license/{license.pk}/change/",
        {
            "license_id": license.license_id,
            "organization": license.organization_id,
            "starts_at_0": "2026-01-01",
            "starts_at_1": "00:00:00",
            "expires_at_0": "2028-01-01",
            "expires_at_1": "00:00:00",
            "items-TOTAL_FORMS": "0",
            "items-INITIAL_FORMS": "0",
            "items-MIN_NUM_FORMS": "0",
            "items-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditLog.objects.get(action="license.change")
    assert entry.actor == user
    assert entry.before["expires_at"] != entry.after["expires_at"] == "2028-01-01T00:00:00Z"


@pytest.mark.django_db
def test_it_records_an_item_edited_in_the_admin(db):
    client, user = staff_client()
    item = factories.LicenseItemFactory(per_client_device=True, quantity=10)
    data = {
        "license": item.license_id,
        "project": item.project_id,
        "product": "dbr",
        "option": "per_client_device",
        "edition": "",
        "addon": "",
        "quantity": "12",
        "quantities": "",
        "domain": "",
        "period": "yearly",
        "activation_basis": "first_authorization",
        "device_grace_percent": "10",
        "quota_grace_percent": "5",
        "overuse_percent": "10",
        "overuse_budget": "",
        "dedup_interval_ms": "3000",
        "heartbeat_timeout_s": "600",
        "position": "",
    }
    assert client.post(f"/admin/licenses/licenseitem/{item.pk}/change/", data).status_code == 302
    assert LicenseItem.objects.get().quantity == 12
    entry = AuditLog.objects.get(action="item.change")
    assert (entry.actor, entry.before["quantity"], entry.after["quantity"]) == (user, 10, 12)


@pytest.mark.django_db
def test_it_records_a_reorder_in_the_project_admin(db, now):
    client, user = staff_client()
    project = factories.ProjectFactory()
    first = factories.LicenseItemFactory(project=project)
    second = factories.LicenseItemFactory(project=project)
    data = {
        "organization": project.organization_id,
        "name": project.name,
        "items-TOTAL_FORMS": "2",
        "items-INITIAL_FORMS": "2",
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
        "items-0-id": first.pk,
        "items-0-project": project.pk,
        "items-0-position": "1",
        "items-1-id": second.pk,
        "items-1-project": project.pk,
        "items-1-position": "0",
    }
    response = client.post(f"/admin/licenses/project/{project.pk}/change/", data)
    assert response.status_code == 302
    assert list(project.items_in_order()) == [second, first]
    assert AuditLog.objects.filter(action="item.change", actor=user).count() == 2
    entry = AuditLog.objects.get(action="project.change")
    assert entry.before["items_in_order"] == [first.item_id, second.item_id]
    assert entry.after["items_in_order"] == [second.item_id, first.item_id]


@pytest.mark.django_db
def test_it_records_a_membership_and_a_rename_made_on_the_organization_page(db):
    client, staff = staff_client()
    organization = factories.OrganizationFactory(name="Acme Old")
    customer = factories.UserFactory(username="cust")
    response = client.post(
        f"/admin/licenses/organization/{organization.pk}/change/",
        {
            "name": "Acme Corp",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-user": customer.pk,
            "memberships-0-role": "viewer",
            "alert_recipients-TOTAL_FORMS": "0",
            "alert_recipients-INITIAL_FORMS": "0",
            "alert_recipients-MIN_NUM_FORMS": "0",
            "alert_recipients-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302
    membership = AuditLog.objects.get(action="membership.add")
    assert (membership.actor, membership.after["role"], membership.organization_id) == (
        staff,
        "viewer",
        organization.pk,
    )
    rename = AuditLog.objects.get(action="organization.change")
    assert (rename.before["name"], rename.after["name"]) == ("Acme Old", "Acme Corp")

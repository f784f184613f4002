"""The project's protection, key rotation and offline registration pages (owner / viewer /
outsider), and the same settings in the admin."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from devices.models import Device
from licenses.models import AuditLog, Project
from licenses.protection import password_digest
from tests import factories
from tests.factories import MODEL_BACKEND, NOW, staff_client, world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    with time_machine.travel(NOW, tick=False):
        yield world(NOW)


def as_user(client, user):
    client.force_login(user, backend=MODEL_BACKEND)
    return client


def protection_post(**fields):
    body = {"session_password": "", "allowed_domains": "", "allowed_app_ids": "", "allowed_process_names": ""}
    body.update(fields)
    return body


def test_an_owner_sets_the_password_and_lists(client, w):
    as_user(client, w.owner)
    url = reverse("portal:protection", args=[w.project.pk])
    assert client.get(url).status_code == 200
    answer = client.post(url, protection_post(session_password="pw1", allowed_domains="*.acme.com\nACME.org",
                                              allowed_app_ids="com.acme.a, com.acme.b"))  # fmt: skip
    assert answer.status_code == 302
    project = Project.objects.get(pk=w.project.pk)
    assert project.session_password_digest == password_digest("pw1")
    assert project.allowed_domains == ["*.acme.com", "ACME.org"]
    assert project.allowed_app_ids == ["com.acme.a", "com.acme.b"]
    audit = AuditLog.objects.get(action="project.protection")
    assert audit.actor == w.owner and "pw1" not in json.dumps(audit.after)
    page = client.get(url).content.decode()
    assert "pw1" not in page and password_digest("pw1") not in page


def test_a_bad_domain_is_shown_and_nothing_changes(client, w):
    as_user(client, w.owner)
    url = reverse("portal:protection", args=[w.project.pk])
    answer = client.post(url, protection_post(allowed_domains="com"))
    assert answer.status_code == 400 and "com: " in answer.content.decode()  # the domain and its reason
    assert Project.objects.get(pk=w.project.pk).allowed_domains == []


def test_viewers_see_but_cannot_change_and_outsiders_get_404(client, w):
    urls = [reverse("portal:protection", args=[w.project.pk]), reverse("portal:rotate_key", args=[w.project.pk]),
            reverse("portal:offline_register", args=[w.project.pk])]  # fmt: skip
    as_user(client, w.viewer)
    assert client.get(urls[0]).status_code == 200
    assert client.post(urls[0], protection_post(session_password="x")).status_code == 403
    assert client.post(urls[1], {"grace_days": "0"}).status_code == 403
    assert client.get(urls[2]).status_code == 403
    as_user(client, w.outsider)
    for url in urls:
        assert client.get(url).status_code in (404, 405)
        assert client.post(url, {"grace_days": "0"}).status_code == 404
    project = Project.objects.get(pk=w.project.pk)
    assert project.session_password_digest == "" and project.previous_license_key is None


def test_an_owner_rotates_and_the_project_page_shows_when_the_old_key_dies(client, w):
    as_user(client, w.owner)
    old = w.project.license_key
    with time_machine.travel(NOW, tick=False):
        answer = client.post(reverse("portal:rotate_key", args=[w.project.pk]), {"grace_days": "30"})
        assert answer.status_code == 302
        project = Project.objects.get(pk=w.project.pk)
        assert project.previous_license_key == old and project.previous_key_expires_at == NOW + timedelta(days=30)
        page = client.get(reverse("portal:project", args=[w.project.pk])).content.decode()
    assert "the previous key stops working at" in page and project.license_key in page
    assert AuditLog.objects.filter(action="project.rotate_key", actor=w.owner).count() == 1


def test_an_owner_registers_an_offline_device_by_paste_and_by_upload(client, w):
    as_user(client, w.owner)
    url = reverse("portal:offline_register", args=[w.project.pk])
    body = {
        "device_uuid": "kiosk-9",
        "product": "dbr",
        "client_type": "desktop",
        "requested_at": "2026-11-27T17:00:00Z",
    }
    with time_machine.travel(NOW, tick=False):
        answer = client.post(url, {"request_text": json.dumps(body)})
        assert answer.status_code == 200 and "Registration response for kiosk-9" in answer.content.decode()
        upload = SimpleUploadedFile("req.json", json.dumps({**body, "device_uuid": "kiosk-10"}).encode())
        assert client.post(url, {"request_file": upload}).status_code == 200
        refused = client.post(url, {"request_text": json.dumps({**body, "product": "dlr"})})
    assert refused.status_code == 400 and "104 NO_MATCHING_LICENSE" in refused.content.decode()
    assert set(Device.objects.filter(offline=True).values_list("device_uuid", flat=True)) == {"kiosk-9", "kiosk-10"}


def test_staff_set_protection_and_rotate_in_the_admin():
    item = factories.LicenseItemFactory()
    client, staff = staff_client()
    url = reverse("admin:licenses_project_change", args=[item.project.pk])
    assert client.get(url).status_code == 200
    answer = client.post(url, {
        "name": item.project.name, "session_password": "adm1n", "domains": "*.acme.com", "app_ids": "",
        "process_names": "scanner.exe", "items-TOTAL_FORMS": "1", "items-INITIAL_FORMS": "1",
        "items-0-id": str(item.pk), "items-0-project": str(item.project.pk), "items-0-position": "",
    })  # fmt: skip
    assert answer.status_code in (200, 302)
    project = Project.objects.get(pk=item.project.pk)
    if answer.status_code == 200:  # the inline's management form differs: show why
        pytest.fail(answer.context["adminform"].form.errors.as_text() if answer.context else "form error")
    assert project.session_password_digest == password_digest("adm1n")
    assert project.allowed_domains == ["*.acme.com"] and project.allowed_process_names == ["scanner.exe"]
    old = project.license_key
    changelist = reverse("admin:licenses_project_changelist")
    client.post(changelist, {"action": "rotate_leaked_key", "_selected_action": [project.pk]})
    project.refresh_from_db()
    assert project.previous_license_key == old and project.license_key != old
    assert AuditLog.objects.filter(action="project.rotate_key", actor=staff).count() == 1


def test_offline_devices_are_listed_with_their_filter_and_the_release_page_says_what_it_does(client, w):
    offline = factories.DeviceFactory(item=w.seats, now=NOW, offline=True, device_name="Plant kiosk")
    as_user(client, w.owner)
    with time_machine.travel(NOW, tick=False):
        listed = client.get(reverse("portal:devices", args=[w.project.pk]) + "?kind=offline").content.decode()
        release = client.get(reverse("portal:device_release", args=[offline.pk])).content.decode()
    assert "Plant kiosk" in listed and "Front desk 0" not in listed and ">offline</span>" in listed
    assert "registered offline" in release and "still verifies until" in release

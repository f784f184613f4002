"""License key rotation (SPEC section 2): both keys work during the grace, the old one answers
101 from the instant it ends, seats stay with the project."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devices.models import Device
from licenses.keys import rotate_key
from licenses.models import AuditLog
from tests import factories
from tests.factories import NOW, error_of, move_clock, post

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def auth(client, key: str, device_uuid: str = "d1"):
    return post(client, "authorize", {"license_key": key, "device_uuid": device_uuid, "product": "dbr",
                                      "client_type": "desktop"})  # fmt: skip


def seats_project(quantity: int = 1):
    item = factories.LicenseItemFactory(quantity=quantity, device_grace_percent=0)
    return item.project, item


def test_both_keys_work_in_the_grace_and_the_old_one_dies_at_the_exact_instant(client):
    project, _ = seats_project(quantity=5)
    old = project.license_key
    rotate_key(project, grace_days=30, actor="cli:test", now=NOW)
    new = project.license_key
    assert new != old and project.previous_license_key == old
    assert project.previous_key_expires_at == NOW + timedelta(days=30)
    assert auth(client, old).status_code == 200 and auth(client, new).status_code == 200
    move_clock(NOW + timedelta(days=30) - timedelta(microseconds=1))
    assert auth(client, old).status_code == 200
    move_clock(NOW + timedelta(days=30))
    refused = auth(client, old)
    assert refused.status_code == 403 and error_of(refused)["code"] == 101
    assert auth(client, new).status_code == 200


def test_a_leaked_key_with_grace_zero_stops_at_once(client):
    project, _ = seats_project()
    old = project.license_key
    rotate_key(project, grace_days=0, actor="cli:test", now=NOW)
    assert error_of(auth(client, old))["code"] == 101
    assert auth(client, project.license_key).status_code == 200


def test_devices_keep_their_seats_across_the_rotation(client):
    project, item = seats_project(quantity=1)
    old = project.license_key
    assert auth(client, old, "d1").status_code == 200
    rotate_key(project, grace_days=30, actor="cli:test", now=NOW)
    again = auth(client, project.license_key, "d1")  # the same device with the new key: its seat
    assert again.status_code == 200
    assert Device.objects.filter(item=item, state=Device.ACTIVE).count() == 1
    assert error_of(auth(client, project.license_key, "d2"))["code"] == 120  # 1 of 1 taken
    usage = factories.usage_body(project, "d1")  # the new key in usage too
    assert post(client, "usage", usage).status_code == 200


def test_a_second_rotation_ends_the_first_old_key(client):
    project, _ = seats_project()
    first = project.license_key
    rotate_key(project, grace_days=30, actor="cli:test", now=NOW)
    second = project.license_key
    rotate_key(project, grace_days=30, actor="cli:test", now=NOW + timedelta(days=1))
    move_clock(NOW + timedelta(days=1))
    assert error_of(auth(client, first))["code"] == 101
    assert auth(client, second).status_code == 200


def test_the_rotation_is_audited_without_the_keys():
    project, _ = seats_project()
    old = project.license_key
    rotate_key(project, grace_days=7, actor="cli:test", now=NOW)
    audit = AuditLog.objects.get(action="project.rotate_key")
    assert audit.after["grace_days"] == 7 and audit.actor_name == "cli:test"
    text = str(audit.before) + str(audit.after)
    assert old not in text and project.license_key not in text


def test_a_key_starting_with_a_dash_keeps_working_and_rotates(client):
    project, _ = seats_project()
    project.license_key = "-legacyKEY_0123456789abcdef"
    project.save(update_fields=["license_key"])
    assert auth(client, project.license_key).status_code == 200
    rotate_key(project, grace_days=1, actor="cli:test", now=NOW)
    assert not project.license_key.startswith("-")
    assert auth(client, "-legacyKEY_0123456789abcdef").status_code == 200


@pytest.mark.parametrize("grace", [-1, 366, 1.5, True])
def test_an_impossible_grace_is_refused(grace):
    project, _ = seats_project()
    with pytest.raises(ValueError):
        rotate_key(project, grace_days=grace, actor="cli:test", now=NOW)


def test_the_key_lookup_is_one_query(django_assert_num_queries):
    from devices.services import project_for_key

    project, _ = seats_project()
    with django_assert_num_queries(1):
        assert project_for_key(project.license_key, now=NOW) == project


def test_the_rotate_key_command_prints_the_new_key_and_takes_a_dash_key(capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    project, _ = seats_project()
    project.license_key = "-dashKEY0123456789abcdefgh"
    project.save(update_fields=["license_key"])
    call_command("rotate_key", "--license-key", "-dashKEY0123456789abcdefgh", "--grace-days", "0")
    out, err = capsys.readouterr()
    project.refresh_from_db()
    assert out == project.license_key + "\n" and "the old key works until" in err
    call_command("rotate_key", f"--license-key={project.license_key}")
    assert capsys.readouterr().out.strip() != project.license_key
    with pytest.raises(CommandError, match="no project has this license key"):
        call_command("rotate_key", "--license-key", "-dashKEY0123456789abcdefgh")  # the old key: rotated out

"""License keys: unique, at least 128 bits from a CSPRNG, URL-safe (SPEC section 2)."""

from __future__ import annotations

import re

import pytest
from django.db import IntegrityError, transaction

from licenses.models import Project, new_license_key
from licenses.services import import_license
from tests import factories
from tests.factories import license_file

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_it_makes_url_safe_keys_of_at_least_128_bits():
    keys = [new_license_key() for _ in range(2000)]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert URL_SAFE.match(key)
        # base64url without padding: 6 bits a character; 32 characters = 192 bits >= 128.
        assert len(key) * 6 >= 128
        assert len(key) == 32
    # Every character position varies (not a counter or a timestamp with a random tail).
    for position in range(32):
        assert len({k[position] for k in keys}) > 20


def test_it_draws_keys_from_the_os_csprng(monkeypatch):
    calls = []
    import secrets

    real = secrets.token_urlsafe

    def spy(n):
        calls.append(n)
        return real(n)

    monkeypatch.setattr(secrets, "token_urlsafe", spy)
    new_license_key()
    assert calls == [24]  # 24 random bytes = 192 bits


@pytest.mark.django_db
def test_it_gives_every_imported_project_its_own_key(now):
    keys = {import_license(license_file(), now=now)["license_key"] for _ in range(30)}
    assert len(keys) == 30
    assert all(URL_SAFE.match(k) for k in keys)


@pytest.mark.django_db
def test_it_refuses_a_duplicate_key_in_the_database():
    first = factories.ProjectFactory()
    second = factories.ProjectFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.filter(pk=second.pk).update(license_key=first.license_key)

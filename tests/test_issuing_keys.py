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
    import secrets

    calls = []

    def spy(n):
        calls.append(n)
        return "A" * 32

    monkeypatch.setattr(secrets, "token_urlsafe", spy)
    assert new_license_key() == "A" * 32
    assert calls == [24]  # 24 random bytes = 192 bits


def test_it_draws_again_when_a_key_would_start_with_a_dash(monkeypatch):
    """A key is passed as a command-line argument: "-x..." would read as an option (SPEC 2)."""
    import secrets

    draws = iter(["-" + "a" * 31, "--" + "b" * 30, "c-" + "d" * 30])
    calls = []

    def fake(n):
        calls.append(n)
        return next(draws)

    monkeypatch.setattr(secrets, "token_urlsafe", fake)
    assert new_license_key() == "c-" + "d" * 30
    assert calls == [24, 24, 24]


def test_it_never_starts_a_key_with_a_dash():
    assert not any(new_license_key().startswith("-") for _ in range(5000))


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

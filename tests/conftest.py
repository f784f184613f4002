from __future__ import annotations

import pytest
from django.db import connection

from tests import factories


@pytest.fixture
def now():
    return factories.NOW


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")

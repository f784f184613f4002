"""The fixed instants and credentials every test module shares (re-exported by tests.factories)."""

from datetime import UTC, datetime

from licenses.clock import slot_start_of

NOW = datetime(2026, 11, 27, 17, 24, tzinfo=UTC)  # on a slot boundary
SLOT = slot_start_of(NOW)
PASSWORD = "pw-Test-12345"  # every UserFactory user's password
# force_login with an explicit backend: the first in AUTHENTICATION_BACKENDS is the login
# throttle, which authenticates nobody.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

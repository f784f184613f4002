"""The claims of a device's local license (SPEC section 7; offline registrations, section 12).

Signing, key loading and rotation are ``devices/signing.py``; this module says what the token
claims: who it is for, which item, until when, what remains, and for a web device its origin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings

from devices.models import Device
from devices.signing import sign_local_license
from licenses import rules
from licenses.models import LicenseItem, Project


def local_license(
    *,
    project: Project,
    device: Device,
    item: LicenseItem,
    remaining: dict[str, Any],
    now: datetime,
    offline: bool = False,
) -> str:
    """The device's local license (SPEC section 7): a web device's token names its origin, and an
    offline registration's (``offline=True``, SPEC section 12) says so and runs to the device's
    ``active_until``, the seat it holds, on a first_use item as on any other."""
    exp = device.active_until
    claims: dict[str, Any] = {
        "iss": settings.BASE_URL,
        "sub": device.device_uuid,
        "iat": int(now.timestamp()),
        "exp": 0,
        "license_key": project.license_key,
        "item": item.item_id,
        "product": item.product,
        "option": item.option,
        "remaining": remaining,
    }
    if item.option == rules.PER_CLIENT_DEVICE:
        claims["period_s"] = item.period_seconds
        if item.activation_basis == "first_use" and not offline:
            exp = item.license.expires_at  # the SDK starts the period's clock at first use
    if device.client_type == "web":
        claims["origin"] = device.origin  # the SDK refuses the token on any other origin
    if offline:
        claims["offline"] = True
    claims["exp"] = int(exp.timestamp())
    return sign_local_license(claims)

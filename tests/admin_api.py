"""Helpers of the admin API and webhook tests: tokens and calls."""

from __future__ import annotations

import json
from datetime import datetime

from django.utils import timezone

from licenses.models import ApiToken

BASE = "/api/admin/v1"


def token(scope: str = "write", organization=None, *, now: datetime | None = None, **fields) -> str:
    """A new token's secret: a staff token, or ``organization``'s."""
    _, secret = ApiToken.create_token(
        scope=scope, organization=organization, now=now or timezone.now(), name=fields.pop("name", "test"), **fields
    )
    return secret


def call(client, method: str, path: str, secret: str | None = None, body=None, **headers):
    """``method`` ``BASE + path`` with the bearer token and a JSON body."""
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    if secret is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    kwargs = {}
    if body is not None:
        kwargs = {
            "data": body if isinstance(body, str | bytes) else json.dumps(body),
            "content_type": "application/json",
        }
    return getattr(client, method.lower())(BASE + path, **kwargs, **extra)


def error(response) -> dict:
    return response.json()["error"]

"""Request bodies of the admin API (SPEC section 13). Answers are documented as JSON objects;
their fields are listed in docs/admin-api.md."""

from __future__ import annotations

from typing import Any

from ninja import Field, Schema
from pydantic import ConfigDict

from api.schemas import ErrorResponse

__all__ = ["ErrorResponse"]


class Strict(Schema):
    model_config = ConfigDict(extra="forbid")


class OrderRequest(Strict):
    items: list[str] = Field(..., description="every item id of the project exactly once, first consumed first")


class RotateKeyRequest(Strict):
    grace_days: int = Field(30, ge=0, le=365, description="days the old key keeps working (0: stops at once)")


class ProtectionRequest(Strict):
    session_password: str | None = Field(None, max_length=255, description="null: no session password")
    domains: list[str] = Field(default_factory=list)
    app_ids: list[str] = Field(default_factory=list)
    process_names: list[str] = Field(default_factory=list)


class WebhookCreate(Strict):
    url: str = Field(..., min_length=1, max_length=2000)
    events: list[str] | None = Field(None, description="omitted: every event type")
    organization: str | None = Field(None, description="staff tokens: limit the endpoint to one organization")


class WebhookPatch(Strict):
    url: str | None = Field(None, min_length=1, max_length=2000)
    events: list[str] | None = None
    enabled: bool | None = None
    rotate_secret: bool = Field(False, description="a new secret; the old one also signs for 24 h")


class Page(Schema):
    data: list[dict[str, Any]]
    next_cursor: str | None


ERRORS = {400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 429: ErrorResponse}
WRITE_ERRORS = {**ERRORS, 409: ErrorResponse}

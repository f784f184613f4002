"""The one table that turns a SPEC code into an HTTP status (sections 6 and 13), and the
responses built from it."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from devices.outcomes import Refusal

HTTP_STATUS: dict[int, int] = {
    1: 400,
    2: 409,
    3: 429,
    4: 403,
    5: 401,
    6: 403,
    7: 404,
    8: 409,
    101: 403,
    102: 403,
    103: 403,
    104: 403,
    111: 403,
    112: 403,
    113: 403,
    114: 403,
    120: 403,
}


def json_response(body: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def refusal_response(refusal: Refusal, *, status: int | None = None) -> JsonResponse:
    """The SPEC error body with the code's status (``status`` overrides it: 413 for code 1)."""
    response = json_response({"error": refusal.detail()}, status or HTTP_STATUS[refusal.code])
    if refusal.retry_after is not None:
        response["Retry-After"] = str(refusal.retry_after)
    return response

"""Public, non-API routes of the devices app: the JWKS that verifies local licenses (SPEC section 7)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from devices.signing import jwks


@require_safe
def jwks_view(request: HttpRequest) -> JsonResponse:
    """Every configured public key, so that licenses signed by a rotated-out signer still verify."""
    response = JsonResponse(jwks())
    # Public and cacheable, but briefly: a new key must reach SDKs well before an old one is dropped.
    patch_cache_control(response, public=True, max_age=3600)
    response["Access-Control-Allow-Origin"] = "*"
    return response


urlpatterns = [
    path(".well-known/jwks.json", jwks_view, name="jwks"),
]

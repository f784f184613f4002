"""The device API (SPEC section 6), served under /api/v1/."""

from ninja import NinjaAPI

api = NinjaAPI(title="DLS Admin device API", version="1", urls_namespace="device-api")

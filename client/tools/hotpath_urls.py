"""The URLs of the in-process benchmark (``client/tools/hotpath.py``): the product's, plus a
floor under /api/v1/: a django-ninja POST with the usage report's schema and the device API's
parser that does nothing, so its cost is the framework's (middleware, parsing, validation, a
JSON answer) and the difference to a real report is the work of the report itself."""

from django.urls import path
from ninja import NinjaAPI

from api.device import StrictJsonParser
from api.errors import json_response
from api.schemas import UsageRequest
from dls_admin.urls import urlpatterns as product

floor = NinjaAPI(urls_namespace="hotpath-floor", parser=StrictJsonParser(), docs_url=None, openapi_url=None)


@floor.post("/usage")
def usage(request, payload: UsageRequest):
    return json_response({"status": "accepted", "allowed": True, "counted": {"barcode_scans": 0, "pages": {}}})


urlpatterns = [path("api/v1/floor/", floor.urls), *product]

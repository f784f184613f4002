"""The OpenAPI document describes the device API: its operations, request bodies, the SPEC error
body, and every status code each operation answers. (tests/test_schema_api.py fuzzes it.)"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_it_documents_the_three_operations_and_their_status_codes(client):
    document = client.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    expected = {
        "/api/v1/authorize": ({"200", "400", "403", "413", "429"}, "AuthorizeRequest"),
        "/api/v1/usage": ({"200", "400", "403", "409", "413", "429"}, "UsageRequest"),
        "/api/v1/release": ({"200", "400", "403", "413", "429"}, "ReleaseRequest"),
    }
    for path, (codes, request_schema) in expected.items():
        operation = paths[path]["post"]
        assert set(operation["responses"]) == codes
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{request_schema}"}
        for code in codes - {"200"}:
            schema = operation["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}


def test_the_error_body_and_request_constraints_are_in_the_schema(client):
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert set(schemas["ErrorDetail"]["required"]) == {"code", "name", "message"}
    usage = schemas["UsageRequest"]["properties"]
    assert usage["barcode_scans"]["maximum"] == 1_000_000 and usage["sightings"]["maxItems"] == 10_000
    authorize = schemas["AuthorizeRequest"]
    assert authorize["properties"]["device_uuid"]["pattern"] == "^[A-Za-z0-9._:-]+$"
    assert authorize["then"]["required"] == ["origin"]  # origin is required for web clients


def test_the_docs_page_renders(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200 and b"openapi.json" in response.content

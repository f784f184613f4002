"""Ready-to-paste authorization snippets for a project's page: one per product and edition of its
items, with the project's license key and this server's base URL (settings.BASE_URL) filled in.
The full contract is the API docs at /api/v1/docs (SPEC section 6)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings

from licenses import rules

# edition -> the client_type its SDK sends; no edition: a desktop client
CLIENT_TYPE = {
    "javascript": "web",
    "mobile": "mobile",
    "desktop": "desktop",
    "server": "server",
    "embedded": "embedded",
}


@dataclass
class Snippet:
    key: str  # a stable id for the page's anchors and labels
    title: str
    language: str
    code: str


def _body(license_key: str, product: str, edition: str, addon: str, device_uuid: str) -> dict:
    client_type = CLIENT_TYPE.get(edition, "desktop")
    body = {"license_key": license_key, "device_uuid": device_uuid, "product": product}
    if edition:
        body["edition"] = edition
    if addon:
        body["addon"] = addon
    body["client_type"] = client_type
    if client_type == "web":
        body["origin"] = "https://app.example.com"
    return body


def project_snippets(project, items) -> list[Snippet]:
    base = settings.BASE_URL
    seen: set[tuple[str, str, str]] = set()
    snippets = []
    for item in items:
        key = (item.product, item.edition or "", item.addon or "")
        if key in seen:
            continue
        seen.add(key)
        product, edition, addon = key
        title = (
            rules.PRODUCTS.get(product, product)
            + (f", {edition} edition" if edition else "")
            + (f", {addon.replace('_', ' ')} add-on" if addon else "")
        )
        anchor = "-".join(p for p in key if p)
        if edition == "javascript":
            body = _body(project.license_key, product, edition, addon, "${deviceUuid}")
            payload = (
                json.dumps(body, indent=2)
                .replace('"${deviceUuid}"', "deviceUuid")
                .replace('"https://app.example.com"', "location.origin")
            )
            code = (
                "// In the page: one UUID per browser and origin, kept in localStorage.\n"
                "const deviceUuid = localStorage.dlsDevice ||= crypto.randomUUID();\n"
                f'const answer = await fetch("{base}/api/v1/authorize", {{\n'
                '  method: "POST",\n'
                '  headers: {"Content-Type": "application/json"},\n'
                f"  body: JSON.stringify({payload}),\n"
                "}).then((r) => r.json());\n"
                "// answer.local_license: keep it; report usage every 3 minutes (answer.report_interval_s)."
            )
            snippets.append(Snippet(anchor, title, "JavaScript", code))
        else:
            body = _body(project.license_key, product, edition, addon, "$(hostname)-1")
            code = (
                f"curl -sS -X POST {base}/api/v1/authorize \\\n"
                "  -H 'Content-Type: application/json' \\\n"
                f"  -d '{json.dumps(body)}'"
            ).replace('"$(hostname)-1"', '"\'"$(hostname)"\'"')
            snippets.append(Snippet(anchor, title, "shell", code))
    return snippets

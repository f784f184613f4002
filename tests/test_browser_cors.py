"""The web SDK's path in a real browser (SPEC section 6, "Browsers"): a page served on one origin
calls authorize and usage on the server's origin with fetch (a CORS preflight first, since the
body is JSON) and gets its local license, bound to the page's origin; a page on an unlicensed
origin gets 103. Debian's Chromium driven by Playwright; the pages come from a second small HTTP
server on another port."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from licenses.models import License
from tests import factories
from tests.test_browser_portal import CHROMIUM, browser, new_page  # noqa: F401 (the browser fixture)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_rate_limits")]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>shop</title></head><body>
<pre id="out">running</pre>
<script>
const api = new URLSearchParams(location.search).get("api");
const key = new URLSearchParams(location.search).get("key");
async function call(path, body) {
  const r = await fetch(api + "/api/v1/" + path, {method: "POST", headers: {"Content-Type": "application/json"},
                                                   body: JSON.stringify(body)});
  return {status: r.status, body: await r.json(), retryAfter: r.headers.get("Retry-After")};
}
(async () => {
  const auth = await call("authorize", {license_key: key, device_uuid: "browser-1", product: "dbr",
    edition: "javascript", client_type: "web", origin: location.origin});
  let usage = null;
  if (auth.status === 200) {
    const slot = new Date(Math.floor(Date.now() / 180000) * 180000).toISOString().replace(".000Z", "Z");
    usage = await call("usage", {license_key: key, device_uuid: "browser-1", report_id: "b-1", slot_start: slot,
      barcode_scans: 2});
  }
  window.result = {auth, usage, origin: location.origin, cookies: document.cookie};
  document.getElementById("out").textContent = "done";
})();
</script></body></html>"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def page_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def run_page(browser, url: str) -> dict:  # noqa: F811
    page = new_page(browser)
    page.goto(url)
    page.wait_for_function("window.result !== undefined", timeout=60000)  # a loaded CI machine is slow
    result = page.evaluate("window.result")
    page.context.close()
    return result


def test_a_page_on_a_licensed_origin_authorizes_reports_and_gets_its_local_license(
    browser,  # noqa: F811
    live_server,
    page_server,
    transactional_db,
):
    from django.utils import timezone

    now = timezone.now()
    lic = factories.LicenseFactory(
        starts_at=now - factories.minutes(60 * 24), expires_at=now + factories.minutes(60 * 24 * 30)
    )
    assert lic.status == License.ACTIVE
    item = factories.LicenseItemFactory(
        per_domain=True, domain="127.0.0.1", license=lic, project__organization=lic.organization
    )
    key = item.project.license_key
    licensed = run_page(browser, f"http://127.0.0.1:{page_server}/shop.html?api={live_server.url}&key={key}")
    origin = f"http://127.0.0.1:{page_server}"
    assert licensed["auth"]["status"] == 200, licensed
    # fetch read the answers at all: the CORS preflight and headers let it (else it throws).
    assert claims(licensed["auth"]["body"]["local_license"])["origin"] == origin
    assert licensed["usage"]["status"] == 200 and licensed["usage"]["body"]["allowed"] is True
    assert licensed["usage"]["body"]["counted"]["barcode_scans"] == 2
    # The same page on another origin (same server, another host name): not licensed.
    other = run_page(browser, f"http://localhost:{page_server}/shop.html?api={live_server.url}&key={key}")
    assert other["auth"]["status"] == 403 and other["auth"]["body"]["error"]["code"] == 103
    assert "origin" in other["auth"]["body"]["error"]["message"]  # the refusal is readable by the page
    assert licensed["cookies"] == "" and other["cookies"] == ""
    assert other["usage"] is None

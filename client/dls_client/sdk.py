"""A reference SDK client of the device API (SPEC section 6), in Python with httpx.

What a real SDK does, in the fewest lines: authorize, deduplicate barcode sightings with the
3-second rule (``duplicateForgetTime``), report usage per 3-minute slot with a ``report_id`` that
a retry reuses (so a retry never counts twice), keep reports while offline and send them later in
order, release the seat on uninstall. ``simulate_fleet`` drives many of these; it is also a
readable example for SDK authors."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from .tokens import LocalLicenseRefused, LocalLicenseVerifier

SLOT = timedelta(seconds=180)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def slot_start_of(dt: datetime) -> datetime:
    return _EPOCH + ((dt - _EPOCH) // SLOT) * SLOT


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SimulatedNetworkError(httpx.TransportError):
    """A failure injected by the caller: ``lost_response`` means the server did get the request."""

    def __init__(self, message: str, *, lost_response: bool):
        super().__init__(message)
        self.lost_response = lost_response


@dataclass
class Sighting:
    ts_ms: int
    frame: int
    format: str
    text: str

    def as_json(self) -> dict:
        return {"ts_ms": self.ts_ms, "frame": self.frame, "format": self.format, "text": self.text}


class Deduplicator:
    """The SDK's client-side rule, as SPEC section 4 states it: sightings in (ts_ms, frame) order;
    identical barcodes in one frame count once; a sighting counts when ``ts_ms - last >
    interval_ms``, ``last`` being the latest time this (format, text) was seen, counted or not.
    The memory lives as long as the device (across reports)."""

    def __init__(self, interval_ms: int = 3000):
        self.interval_ms = interval_ms
        self.last_seen: dict[tuple[str, str], int] = {}

    def count(self, sightings: Iterable[Sighting]) -> int:
        counted = 0
        seen_in_frame: set[tuple[int, str, str]] = set()
        for s in sorted(sightings, key=lambda s: (s.ts_ms, s.frame)):
            code = (s.format, s.text)
            if (s.frame, *code) in seen_in_frame:
                continue
            seen_in_frame.add((s.frame, *code))
            last = self.last_seen.get(code)
            if last is None or s.ts_ms - last > self.interval_ms:
                counted += 1
            self.last_seen[code] = s.ts_ms if last is None else max(last, s.ts_ms)
        return counted


@dataclass
class Report:
    """One usage report, built once: its body (and so its report_id) never changes on retry."""

    report_id: str
    slot_start: datetime
    barcode_scans: int = 0
    sightings: list[Sighting] = field(default_factory=list)
    pages: dict[str, int] = field(default_factory=dict)
    expected_scans: int = 0  # what the server should count: client-side count + our dedup of sightings

    def body(self, license_key: str, device_uuid: str) -> dict:
        body: dict = {
            "license_key": license_key,
            "device_uuid": device_uuid,
            "report_id": self.report_id,
            "slot_start": rfc3339(self.slot_start),
        }
        if self.barcode_scans:
            body["barcode_scans"] = self.barcode_scans
        if self.sightings:
            body["sightings"] = [s.as_json() for s in self.sightings]
        if self.pages:
            body["pages"] = dict(self.pages)
        return body


@dataclass
class Answer:
    status_code: int
    body: dict
    attempts: int

    @property
    def error_code(self) -> int | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error.get("code") if isinstance(error, dict) else None


class ApiClient:
    """HTTP with retries and failover. A network error (or an injected one) is retried with the
    same body, so a report the server did receive is answered ``duplicate`` and counted once; 429
    waits ``Retry-After``; 5xx is retried; anything else is an answer. ``base_url`` may be several
    server URLs (one deployment behind several addresses): a network error or a 5xx moves to the
    next one, which then stays in use while it answers."""

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        http: httpx.Client | None = None,
        error_rate: float = 0.0,
        max_attempts: int = 8,
        backoff_s: float = 0.05,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("base_url: at least one server URL")
        self.base_urls = [url.rstrip("/") for url in urls]
        self._current = 0
        self.http = http or httpx.Client(timeout=30.0)
        self.error_rate = error_rate
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.stats = {
            "requests": 0,
            "injected_errors": 0,
            "lost_responses": 0,
            "retries": 0,
            "rate_limited": 0,
            "failovers": 0,
        }

    @property
    def base_url(self) -> str:
        """The server URL in use."""
        return self.base_urls[self._current]

    def _fail_over(self) -> None:
        if len(self.base_urls) > 1:
            self._current = (self._current + 1) % len(self.base_urls)
            self.stats["failovers"] += 1

    def _send(self, path: str, body: dict) -> httpx.Response:
        roll = self.rng.random() if self.error_rate else 1.0
        if roll < self.error_rate / 2:
            self.stats["injected_errors"] += 1
            raise SimulatedNetworkError("connection reset before sending", lost_response=False)
        self.stats["requests"] += 1
        response = self.http.post(self.base_url + path, json=body)
        if roll < self.error_rate:
            self.stats["injected_errors"] += 1
            self.stats["lost_responses"] += 1
            raise SimulatedNetworkError("connection reset before the answer arrived", lost_response=True)
        return response

    def post(self, path: str, body: dict) -> Answer:
        """The answer, after retries; raises httpx.TransportError when every attempt failed."""
        last_error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                self.stats["retries"] += 1
            try:
                response = self._send(path, body)
            except httpx.TransportError as exc:
                last_error = exc
                self._fail_over()
                self.sleep(min(2.0, self.backoff_s * 2 ** (attempt - 1)) * self.rng.uniform(0.5, 1.0))
                continue
            if response.status_code == 429:
                self.stats["rate_limited"] += 1
                self.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code >= 500:
                last_error = httpx.HTTPStatusError("server error", request=response.request, response=response)
                self._fail_over()
                self.sleep(min(2.0, self.backoff_s * 2 ** (attempt - 1)))
                continue
            try:
                data = response.json()
            except ValueError:
                data = {"error": {"code": None, "message": response.text[:200]}}
            return Answer(response.status_code, data, attempt)
        raise httpx.TransportError(f"{path}: every attempt failed: {last_error}")


@dataclass
class DeviceProfile:
    """What a device is: the fields of its authorization, and what it reports."""

    product: str
    client_type: str
    option: str = ""
    edition: str | None = None
    addon: str | None = None
    origin: str | None = None
    modules: tuple[str, ...] = ("core",)  # per_page: the modules it counts pages of
    # Project protection (SPEC section 6): sent when the project requires them.
    session_password: str | None = None
    app_id: str | None = None
    process_name: str | None = None
    platform: str | None = None

    def authorize_fields(self) -> dict:
        fields = {"product": self.product, "client_type": self.client_type}
        for name in ("edition", "addon", "origin", "session_password", "app_id", "process_name", "platform"):
            if getattr(self, name):
                fields[name] = getattr(self, name)
        return fields

    @property
    def reports_pages(self) -> bool:
        return self.option == "per_page"


class Device:
    """One SDK instance: authorization state, dedup memory, and the buffer of unsent reports."""

    def __init__(
        self,
        client: ApiClient,
        license_key: str,
        device_uuid: str,
        profile: DeviceProfile,
        name: str = "",
        verifier: LocalLicenseVerifier | None = None,
    ):
        self.client = client
        self.verifier = verifier  # set: every local license is verified (signature, exp, origin)
        self.local_license: str | None = None
        self.license_key = license_key
        self.device_uuid = device_uuid
        self.profile = profile
        self.name = name
        self.authorized = False
        self.stopped = False  # told to stop (quota or seats exhausted): scans no more
        self.dedup: Deduplicator | None = None
        self.buffer: list[Report] = []
        self.last_refusal: dict | None = None

    def authorize(self) -> Answer:
        body = {"license_key": self.license_key, "device_uuid": self.device_uuid, **self.profile.authorize_fields()}
        if self.name:
            body["device_name"] = self.name
        answer = self.client.post("/api/v1/authorize", body)
        self.authorized = answer.status_code == 200
        if self.authorized and self.verifier is not None:
            try:
                self.verifier.verify(answer.body.get("local_license", ""))
            except LocalLicenseRefused as exc:
                self.authorized = False
                answer.body = {"error": {"code": None, "name": "LOCAL_LICENSE_REFUSED", "message": str(exc)}}
        if self.authorized:
            self.local_license = answer.body.get("local_license")
            interval = answer.body.get("dedup_interval_ms", 3000)
            if self.dedup is None:
                self.dedup = Deduplicator(interval)
            self.dedup.interval_ms = interval
            self.stopped = False
        else:
            self.last_refusal = answer.body.get("error")
            self.stopped = True  # refused: the SDK does not work until an authorization succeeds
        return answer

    def _protected(self, body: dict) -> dict:
        if self.profile.session_password:
            body["session_password"] = self.profile.session_password
        return body

    def send(self, report: Report) -> Answer:
        return self.client.post("/api/v1/usage", self._protected(report.body(self.license_key, self.device_uuid)))

    def release(self) -> Answer:
        body = self._protected({"license_key": self.license_key, "device_uuid": self.device_uuid})
        answer = self.client.post("/api/v1/release", body)
        if answer.status_code == 200:
            self.authorized = False
        return answer

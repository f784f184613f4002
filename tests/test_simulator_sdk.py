"""The reference SDK client: its 3-second rule agrees with the server's, and its retries reuse
the same body (so the same report_id), wait Retry-After on 429, and survive lost answers."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import httpx
import pytest

from client.dls_client.sdk import ApiClient, Deduplicator, Report, Sighting
from usage.dedup import Sighting as ServerSighting
from usage.dedup import count_sightings


def test_it_counts_sightings_like_the_server_across_reports():
    rng = random.Random(3)
    for _ in range(200):
        client, memory, server_total, client_total = Deduplicator(3000), {}, 0, 0
        for _report in range(3):
            sightings = []
            for _ in range(rng.randint(0, 30)):
                ts = rng.randrange(0, 20_000, 100)
                sightings.append(Sighting(ts, ts // 100, rng.choice("AB"), rng.choice("xy")))
            sightings.sort(key=lambda s: (s.ts_ms, s.frame))  # reports in time order, like a device
            client_total += client.count(sightings)
            n, last = count_sightings(
                [ServerSighting(s.ts_ms, s.frame, s.format, s.text) for s in sightings], interval_ms=3000, memory=memory
            )
            memory.update(last)
            server_total += n
        assert client_total == server_total


def test_it_applies_the_three_second_rule():
    d = Deduplicator(3000)
    held = [Sighting(ts, ts // 33, "QR_CODE", "A") for ts in range(0, 60_000, 33)]  # a minute at 30 fps
    assert d.count(held) == 1
    last = held[-1].ts_ms
    assert d.count([Sighting(last + 3000, 1, "QR_CODE", "A")]) == 0  # exactly 3 s after: not more than
    assert d.count([Sighting(last + 6001, 2, "QR_CODE", "A")]) == 1
    assert d.count([Sighting(70_000, 9, "QR_CODE", "B"), Sighting(70_000, 9, "QR_CODE", "B")]) == 1  # one frame


def report_body() -> dict:
    report = Report("r-1", datetime(2026, 11, 27, 17, 24, tzinfo=UTC), barcode_scans=3)
    return report.body("key", "dev-1")


def test_it_retries_lost_answers_with_the_same_body():
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        status = "duplicate" if len(bodies) > 1 else "accepted"
        return httpx.Response(200, json={"status": status, "counted": {"barcode_scans": 3, "pages": {}}})

    sleeps = []
    client = ApiClient(
        "http://dls.test", http=httpx.Client(transport=httpx.MockTransport(handler)), error_rate=1.0,
        rng=random.Random(1), sleep=sleeps.append, max_attempts=4,
    )  # fmt: skip
    with pytest.raises(httpx.TransportError):
        client.post("/api/v1/usage", report_body())  # every attempt fails
    client.error_rate = 0.0
    answer = client.post("/api/v1/usage", report_body())
    assert answer.body["status"] == "duplicate" and answer.body["counted"]["barcode_scans"] == 3
    assert bodies and all(b == bodies[0] for b in bodies) and bodies[0]["report_id"] == "r-1"
    assert client.stats["retries"] == 3 and len(sleeps) == 4


def test_it_waits_retry_after_on_429_and_retries_5xx():
    answers = [
        httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"code": 3}}),
        httpx.Response(503, text="busy"),
        httpx.Response(200, json={"status": "accepted"}),
    ]
    sleeps = []
    client = ApiClient(
        "http://dls.test", http=httpx.Client(transport=httpx.MockTransport(lambda r: answers.pop(0))),
        sleep=sleeps.append, rng=random.Random(1),
    )  # fmt: skip
    answer = client.post("/api/v1/usage", report_body())
    assert answer.status_code == 200 and answer.attempts == 3
    assert sleeps[0] == 7.0 and client.stats["rate_limited"] == 1


def test_it_returns_refusals_as_answers():
    body = {"error": {"code": 120, "name": "USAGE_EXCEEDED", "message": "30 of 30 seats are taken"}}
    client = ApiClient(
        "http://dls.test", http=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(403, json=body)))
    )
    answer = client.post("/api/v1/authorize", {})
    assert answer.status_code == 403 and answer.error_code == 120 and answer.attempts == 1


def test_it_fails_over_to_the_next_server_with_the_same_body_and_stays_there():
    seen: list[tuple[str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, json.loads(request.content)))
        if request.url.host == "a.example":
            raise httpx.ConnectError("down", request=request)
        return httpx.Response(200, json={"status": "accepted", "allowed": True})

    client = ApiClient(
        ["https://a.example/", "https://b.example"],
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=lambda s: None,
        rng=random.Random(1),
    )
    body = {"device_uuid": "d1", "report_id": "r1"}
    assert client.post("/api/v1/usage", body).status_code == 200
    assert [host for host, _ in seen] == ["a.example", "b.example"]
    assert seen[0][1] == seen[1][1] == body  # the retry on the other server is the same report
    assert client.stats["failovers"] == 1 and client.base_url == "https://b.example"
    client.post("/api/v1/usage", {"device_uuid": "d1", "report_id": "r2"})
    assert [host for host, _ in seen][2:] == ["b.example"]  # it stays on the server that answers


def test_a_server_error_also_moves_to_the_next_server():
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(503 if request.url.host == "a.example" else 200, json={})

    client = ApiClient(
        ["https://a.example", "https://b.example"],
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=lambda s: None,
    )
    assert client.post("/api/v1/authorize", {}).status_code == 200 and hosts == ["a.example", "b.example"]

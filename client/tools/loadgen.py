"""The API benchmark's load generator, a process of its own (``python -m client.tools.loadgen``).

Reads a JSON plan on standard input, runs each scenario for a fixed time at a fixed concurrency
(threads, one keep-alive httpx client each), and writes one JSON object of results on standard
output. It imports nothing of Django, so its CPU use is only the HTTP client's.

Scenarios: ``ping`` (GET /healthz/ping, the baseline), ``authorize`` (devices of a pool authorize
or re-authorize; some are refused once the seats are taken; with ``"authorize_devices": "new"``
every request is a device never seen), ``usage`` (authorized devices, each on the project of
``keys[uuid]`` when the plan maps it, else ``license_key``, report
scans and unique sightings, each with a fresh report_id; a share of reports is sent a second time
with the same body, which must count nothing).

Each run also reports its measured window (``window``: monotonic start and end, the clock the
caller's samples use) and the CPU each process group used in it (``cpu``, ``bench.cpu``: the
trees of ``plan["cpu_groups"]``, e.g. gunicorn's master, PostgreSQL's, this process, and the
rest of the machine), taken by the main thread at the window's edges."""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import httpx

from client.tools.bench import cpu as cpu_accounting


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def current_slot() -> str:
    now = int(time.time())
    return datetime.fromtimestamp(now - now % 180, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Scenario:
    def __init__(self, plan: dict, name: str):
        self.plan = plan
        self.name = name
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.codes: Counter = Counter()
        self.latencies: list[float] = []
        self.errors = 0
        self.sent_scans = 0  # usage: what accepted first reports carried (scans + unique sightings)
        self.counted_scans = 0  # usage: sum of counted.barcode_scans in the answers
        self.accepted = 0
        self.accepted_measured = 0  # of which in the measured window (the rate of accepted reports)
        self.duplicates = 0
        self.duplicate_counted = 0  # counted in answers marked duplicate (replayed, not added)

    def request(self, client: httpx.Client, rng: random.Random, thread: int, n: int) -> list:
        """(method, url, body, expected_scans) of the next request(s)."""
        base, key = self.plan["base_url"], self.plan["license_key"]
        if self.name == "ping":
            return [("GET", f"{base}/healthz/ping", None, 0)]
        if self.name == "authorize":
            pool = self.plan["authorize_devices"]  # "new": every request a device never seen
            uuid = f"{self.plan['run']}-new-{thread}-{n}" if pool == "new" else rng.choice(pool)
            body = {"license_key": key, "device_uuid": uuid, "product": "dbr", "edition": "javascript",
                    "client_type": "web", "origin": "https://app.bench.example", "sdk_version": "bench"}  # fmt: skip
            return [("POST", f"{base}/api/v1/authorize", body, 0)]
        uuid = self.plan["usage_devices"][(thread + n * 7) % len(self.plan["usage_devices"])]
        key = self.plan.get("keys", {}).get(uuid, key)  # devices spread over several projects
        report_id = f"{self.plan['run']}-{thread}-{n}"
        scans = rng.randint(0, 5)
        sightings = [
            {"ts_ms": int(time.time() * 1000), "frame": i, "format": "QR_CODE", "text": f"{report_id}/{i}"}
            for i in range(2)
        ]
        body = {"license_key": key, "device_uuid": uuid, "report_id": report_id, "slot_start": current_slot(),
                "barcode_scans": scans, "sightings": sightings}  # fmt: skip
        requests = [("POST", f"{base}/api/v1/usage", body, scans + len(sightings))]
        if rng.random() < self.plan.get("duplicate_fraction", 0.05):
            requests.append(("POST", f"{base}/api/v1/usage", body, 0))  # a retry: same body
        return requests

    def record(self, status: int, latency: float, answer: dict | None, expected: int, *, measuring: bool) -> None:
        with self.lock:
            if measuring:
                self.statuses[status] += 1
                self.latencies.append(latency)
            if answer and isinstance(answer.get("error"), dict):
                self.codes[answer["error"].get("code")] += measuring
            if self.name == "usage" and status == 200 and answer:
                counted = int((answer.get("counted") or {}).get("barcode_scans") or 0)
                if answer.get("status") == "duplicate":
                    self.duplicates += 1
                    self.duplicate_counted += counted
                else:
                    self.accepted += 1
                    self.accepted_measured += measuring
                    self.sent_scans += expected
                    self.counted_scans += counted

    def run(self, concurrency: int, duration: float, warmup: float) -> dict:
        start = time.monotonic()
        measure_from = start + warmup
        stop_at = measure_from + duration

        def worker(thread: int) -> None:
            rng = random.Random(f"{self.plan['run']}-{self.name}-{thread}")
            with httpx.Client(timeout=30.0, headers={"Connection": "keep-alive"}) as client:
                n = 0
                while (now := time.monotonic()) < stop_at:
                    for method, url, body, expected in self.request(client, rng, thread, n):
                        t0 = time.perf_counter()
                        try:
                            response = client.request(method, url, json=body)
                            answer = (
                                response.json()
                                if response.headers.get("content-type", "").startswith("application/json")
                                else None
                            )
                            status = response.status_code
                        except (httpx.HTTPError, ValueError):
                            with self.lock:
                                self.errors += 1
                            continue
                        latency = time.perf_counter() - t0
                        self.record(status, latency, answer, expected, measuring=measure_from <= now < stop_at)
                    n += 1

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(concurrency)]
        for t in threads:
            t.start()
        time.sleep(max(0.0, measure_from - time.monotonic()))
        cpu_before = cpu_accounting.snapshot()
        time.sleep(max(0.0, stop_at - time.monotonic()))
        cpu_after = cpu_accounting.snapshot()
        for t in threads:
            t.join()
        groups = {name: list(pids) for name, pids in self.plan.get("cpu_groups", {}).items()}
        groups["loadgen"] = [os.getpid()]
        latencies = sorted(self.latencies)
        result = {
            "requests": len(latencies),
            "rps": len(latencies) / duration,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "mean_ms": sum(latencies) * 1000 / len(latencies) if latencies else float("nan"),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "codes": {str(k): v for k, v in sorted(self.codes.items(), key=str) if v},
            "errors": self.errors,
            "window": [cpu_before["t"], cpu_after["t"]],
            "cpu": cpu_accounting.account(cpu_before, cpu_after, groups),
        }
        if self.name == "usage":
            result.update(
                accepted=self.accepted, accepted_rps=self.accepted_measured / duration, duplicates=self.duplicates,
                sent_scans=self.sent_scans,
                counted_scans=self.counted_scans, duplicate_counted=self.duplicate_counted,
            )  # fmt: skip
        return result


def prepare(plan: dict) -> dict:
    """Authorize the usage devices once (they must hold a seat before they report)."""
    refused = 0
    with httpx.Client(timeout=30.0) as client:
        for uuid in plan["usage_devices"]:
            key = plan.get("keys", {}).get(uuid, plan["license_key"])
            body = {"license_key": key, "device_uuid": uuid, "product": "dbr", "edition": "mobile",
                    "client_type": "mobile"}  # fmt: skip
            refused += client.post(f"{plan['base_url']}/api/v1/authorize", json=body).status_code != 200
    return {"usage_devices": len(plan["usage_devices"]), "refused": refused}


def main() -> None:
    plan = json.load(sys.stdin)
    results = {"prepare": prepare(plan)}
    for name in plan["scenarios"]:
        results[name] = Scenario(plan, name).run(plan["concurrency"], plan["duration"], plan["warmup"])
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()

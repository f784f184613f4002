"""Every portal page and export of the big project, timed over HTTP against gunicorn (logged in
as its owner, one request at a time after the load), p50/p95; and the Python memory of
devices.csv streamed in-process (tracemalloc), the figure "flat memory" is about.

The pages are timed on a quiet machine, as the issue's goals are stated: ``settle`` first
vacuums what the load wrote and waits until its aftermath is over (no autovacuum worker, the CPUs
idle), and ``time_pages`` accounts the CPU of its own window (gunicorn,
PostgreSQL, this process, and anything else), so the table shows how quiet it was."""

from __future__ import annotations

import math
import os
import re
import time
import tracemalloc

import httpx
import psycopg
from django.core.management.base import CommandError

from client.tools.bench import cpu
from client.tools.bench.world import OWNER_PASSWORD

SLOW_S = 10.0  # a page slower than this is not timed again: the table says how many requests
TIMEOUT_S = 60.0  # a page not answered within this is recorded as timed out
QUIET_BUSY = 0.10  # the machine's CPUs at most this busy over a window of QUIET_WINDOW_S ...
QUIET_WINDOW_S = 2.0
SETTLE_LIMIT_S = 180.0  # ... waited for at most this long (the table says when it was not)
AUTOVACUUM = "SELECT query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND query <> ''"


def settle(conninfo: str, say, *, limit_s: float = SETTLE_LIMIT_S, vacuum: bool = True) -> dict:
    """Vacuums and analyzes the database (``vacuum``), then waits until no autovacuum worker runs
    and the machine's CPUs were at most QUIET_BUSY busy over the last QUIET_WINDOW_S. The load
    and the webhook runs insert some 100,000 rows (devices, their search text and tally,
    decisions, reports): autovacuum would vacuum them within its next minute, and did so once in
    the middle of the page timings (run K: 4.4 s more PostgreSQL CPU in the page window, the
    device search's p50 223 ms against 43 in the next run, while it cleaned the trigram index's
    pending list). Vacuumed first, as a database in service is between such bursts. Returns how
    long the vacuum took and it waited, whether it got quiet, and what autovacuum did meanwhile."""
    t0 = time.monotonic()
    seen: set[str] = set()
    busy = float("nan")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if vacuum:
            conn.execute("VACUUM (ANALYZE)")
        vacuum_s = time.monotonic() - t0
        while True:
            before = cpu.snapshot()
            time.sleep(QUIET_WINDOW_S)
            after = cpu.snapshot()
            busy = cpu.account(before, after, {})["utilization"]
            running = [q for (q,) in conn.execute(AUTOVACUUM).fetchall()]
            seen.update(running)
            quiet = busy <= QUIET_BUSY and not running
            waited = time.monotonic() - t0
            if quiet or waited >= limit_s:
                break
    result = {"waited_s": waited, "vacuum_s": vacuum_s, "quiet": quiet, "busy": busy, "autovacuum": sorted(seen)}
    say(
        f"  settled in {waited:.0f} s (VACUUM (ANALYZE) {vacuum_s:.0f} s; CPUs {busy:.0%} busy"
        f"{'' if quiet else ', not quiet: timed anyway'}; autovacuum meanwhile: {len(seen)} tables)"
    )
    return result


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it (of 10
    requests, p50 is the 5th fastest and p95 the slowest)."""
    ordered = sorted(values)
    return ordered[max(1, min(len(ordered), math.ceil(q * len(ordered)))) - 1]


def urls(world: dict, plan: dict) -> list[tuple[str, str]]:
    from devices.models import Device

    project = world["portal_project"].pk
    org = world["org"].pk
    seats = world["portal_seats"].pk
    some_device = Device.objects.filter(project_id=project).order_by("id")[plan["devices"] // 2].pk
    return [
        ("licenses (home)", "/"),
        ("organization", f"/organizations/{org}/"),
        ("project", f"/projects/{project}/"),
        ("devices, page 1", f"/projects/{project}/devices/"),
        ("devices, page 1000", f"/projects/{project}/devices/?page=1000"),
        ("devices, search", f"/projects/{project}/devices/?q=bench-00777"),
        ("devices, expired", f"/projects/{project}/devices/?state=expired"),
        ("device detail", f"/devices/{some_device}/"),
        ("statistics", f"/projects/{project}/statistics/"),
        ("concurrency", f"/projects/{project}/concurrency/"),
        ("refusals", f"/projects/{project}/refusals/"),
        ("protection", f"/projects/{project}/protection/"),
        ("offline registration", f"/projects/{project}/offline/"),
        ("release idle devices", f"/projects/{project}/release-idle/"),
        ("team", f"/organizations/{org}/team/"),
        ("alert recipients", f"/organizations/{org}/alerts/"),
        ("integrations", f"/organizations/{org}/integrations/"),
        ("usage.csv (all)", f"/projects/{project}/export/usage.csv"),
        ("concurrency.csv (all)", f"/projects/{project}/export/concurrency.csv"),
        ("devices.csv (all)", f"/projects/{project}/export/devices.csv"),
        # Last: a page that times out keeps a server worker busy after the client gave up.
        ("item what-if", f"/projects/{project}/items/{seats}/what-if/"),
        ("insight", f"/projects/{project}/insight/"),
        ("seat burn", f"/projects/{project}/seat-burn/"),
    ]


def login(client: httpx.Client, base: str) -> None:
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if not token:
        raise CommandError(f"portal login page without a CSRF token: {page.status_code}")
    answer = client.post(
        "/accounts/login/",
        data={"csrfmiddlewaretoken": token.group(1), "username": "bench-owner", "password": OWNER_PASSWORD},
        headers={"Referer": f"{base}/accounts/login/"},
    )
    if answer.status_code != 302:
        raise CommandError(f"portal login failed: {answer.status_code}")


def time_pages(base: str, world: dict, plan: dict, say, *, gunicorn_pid: int | None = None) -> tuple[list[dict], dict]:
    """Each page's timings, and the CPU of the whole window (``cpu.account``: gunicorn's tree,
    PostgreSQL, this process, ``other``)."""
    results = []
    groups = {"web": [gunicorn_pid] if gunicorn_pid else [], "client": [os.getpid()]}
    before = cpu.snapshot()
    with httpx.Client(base_url=base, timeout=TIMEOUT_S, follow_redirects=False) as client:
        login(client, base)
        for label, url in urls(world, plan):
            timings: list[float] = []
            status: int | str = 0
            size = 0
            for _ in range(plan["page_repeats"]):
                t0 = time.perf_counter()
                try:
                    with client.stream("GET", url) as response:  # the whole body, as a browser reads it
                        size = sum(len(chunk) for chunk in response.iter_raw())
                        status = response.status_code
                except httpx.TimeoutException:
                    status = f"no answer in {TIMEOUT_S:.0f} s"
                timings.append((time.perf_counter() - t0) * 1000)
                if timings[-1] > SLOW_S * 1000:
                    break
            results.append(
                {"page": label, "url": url, "status": status, "bytes": size, "requests": len(timings),
                 "p50_ms": percentile(timings, 0.50), "p95_ms": percentile(timings, 0.95), "max_ms": max(timings)}
            )  # fmt: skip
            say(f"  {label}: {status}, p50 {results[-1]['p50_ms']:,.0f} ms over {len(timings)}")
    return results, cpu.account(before, cpu.snapshot(), groups)


def csv_memory(project) -> dict:
    """devices.csv streamed in-process: the Python heap's peak while every chunk is read and
    dropped (what a StreamingHttpResponse holds), beside the size of the file."""
    from usage.exports import stream_csv

    tracemalloc.start()
    t0 = time.perf_counter()
    size = chunks = 0
    for chunk in stream_csv(project=project, what="devices"):
        size += len(chunk)
        chunks += 1
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"bytes": size, "chunks": chunks, "peak_bytes": peak, "ms": elapsed * 1000}

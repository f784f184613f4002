"""``make bench``'s webhook figure (``bench_api`` calls ``run``; docs/benchmarks.md, section
"Webhooks and the device API"): authorize throughput with a webhook endpoint subscribed to
``devices.refused`` beside the same run without one (SPEC 14: the outbox and delivery never sit
on the device API's hot path).

Every request is refused: a seat item of quantity 1 whose one seat is taken, so each request
writes its ``Decision`` (what ``devices.refused`` is later coalesced from). Runs alternate
without / with the endpoint in the order ABBAAB, in-process (``client/tools/hotpath.py``: SQL
statements, web CPU and sequential rate per request) and under load (gunicorn and the load
generator of ``bench_api``), so a drift of the shared machine falls on both sides. The ratio is
median(with) / median(without); the noise is the spread of the runs of one side. Afterwards the
delivery step runs once as after the window closed: the refusals of the run become one
``devices.refused`` event per item, rule and 10-minute window, one delivery each."""

from __future__ import annotations

import json
import logging
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

DOC = Path(settings.BASE_DIR) / "docs" / "benchmarks.md"
SECTION = "Webhooks and the device API"
ORDER = (False, True, True, False, False, True)  # subscribed, per run: ABBAAB
HOOK_URL = "http://127.0.0.1:9/bench-webhooks"  # never answers; delivery is not what is measured


def create_world(now) -> dict:
    """An organization with a seat item of quantity 1 (no grace left: ceiling 1) whose seat is
    taken, so that every new device is refused."""
    from client.tools import hotpath
    from licenses.models import License, LicenseItem, Organization, Project

    with transaction.atomic():
        org = Organization.objects.create(id="999090", name="Bench Webhooks")  # bench/world.py has 999001-2
        lic = License.objects.create(
            license_id="L-BENCH-WEBHOOKS", organization=org, starts_at=now - timedelta(days=1),
            expires_at=now + timedelta(days=300),
        )  # fmt: skip
        project = Project.objects.create(organization=org, name="bench-refused")
        item = LicenseItem.objects.create(
            license=lic, project=project, product="dbr", edition="javascript", option="per_client_device", quantity=1
        )
    world = {"org": org, "project": project, "item": item}
    # The delivery step of a running installation has run up to the current window.
    from usage.models import JobState
    from usage.webhooks.dispatch import REFUSED_JOB, REFUSED_WINDOW_S

    window = datetime.fromtimestamp(int(now.timestamp()) // REFUSED_WINDOW_S * REFUSED_WINDOW_S, UTC)
    state, _ = JobState.objects.get_or_create(name=REFUSED_JOB)
    if state.watermark is None or state.watermark > window:
        JobState.objects.filter(pk=state.pk).update(watermark=window)
    # The one seat, taken through the device API itself.
    holder = hotpath._measure("the seat's holder", [authorize(project.license_key, "seat-holder")])
    if holder["statuses"] != {200: 1}:
        raise RuntimeError(f"the seat holder was not authorized: {holder['statuses']}")
    return world


def authorize(key: str, uuid: str) -> tuple[str, dict]:
    """The load generator's authorize body (``client/tools/loadgen.py``), for the in-process run."""
    return ("authorize", {"license_key": key, "device_uuid": uuid, "product": "dbr", "edition": "javascript",
                          "client_type": "web", "origin": "https://app.bench.example", "sdk_version": "bench"})  # fmt: skip


def subscribe(world: dict, subscribed: bool) -> None:
    """An endpoint of the organization subscribed to ``devices.refused``, or none."""
    from licenses.models import WebhookEndpoint
    from usage.webhooks.endpoints import create_endpoint

    WebhookEndpoint.objects.filter(organization=world["org"]).delete()
    if subscribed:
        with override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True):  # the loopback URL below
            create_endpoint(
                url=HOOK_URL, events=["devices.refused"], organization=world["org"], created_by_name="bench",
                now=timezone.now(),
            )  # fmt: skip


def in_process(world: dict, n: int) -> list[dict]:
    from client.tools import hotpath

    key = world["project"].license_key
    runs = []
    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.ERROR)  # a warning per refusal otherwise, on both sides alike
    try:
        for i, subscribed in enumerate(ORDER):
            subscribe(world, subscribed)
            label = f"refused authorize, {'with' if subscribed else 'without'} an endpoint"
            row = hotpath._measure(label, [authorize(key, f"refused-{i}-{j}") for j in range(n)])
            runs.append({"subscribed": subscribed, **row})
    finally:
        request_log.setLevel(level)
    return runs


def under_load(base: str, world: dict, plan: dict) -> list[dict]:
    runs = []
    for i, subscribed in enumerate(ORDER):
        subscribe(world, subscribed)
        loadgen_plan = {
            "base_url": base, "license_key": world["project"].license_key, "run": f"wh{i}",
            "scenarios": ["authorize"], "concurrency": plan["concurrency"], "duration": plan["duration"],
            "warmup": plan["warmup"], "usage_devices": [],
            "authorize_devices": [f"refused-load-{i}-{j:05d}" for j in range(plan["authorize_pool"])],
        }  # fmt: skip
        loadavg = os.getloadavg()[0]
        result = subprocess.run(
            [sys.executable, "-m", "client.tools.loadgen"], cwd=settings.BASE_DIR,
            input=json.dumps(loadgen_plan).encode(), capture_output=True, timeout=plan["duration"] * 10 + 600,
        )  # fmt: skip
        if result.returncode:
            raise RuntimeError(f"the load generator failed: {result.stderr.decode()[-2000:]}")
        runs.append({"subscribed": subscribed, "loadavg": loadavg, **json.loads(result.stdout)["authorize"]})
    return runs


def coalesce(world: dict, started) -> dict:
    """The delivery step once, as 11 minutes later (every window of the run closed)."""
    from devices.models import Decision
    from licenses.models import OutboxEvent
    from usage.webhooks.dispatch import REFUSED_WINDOW_S, run_webhooks
    from usage.webhooks.models import WebhookDelivery

    subscribe(world, True)
    refusals = Decision.objects.filter(item=world["item"], allowed=False, created_at__gte=started)
    windows = {int(at.timestamp()) // REFUSED_WINDOW_S for at in refusals.values_list("created_at", flat=True)}
    t0 = time.perf_counter()
    with override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True):
        run_webhooks(now=timezone.now() + timedelta(minutes=11))
    events = OutboxEvent.objects.filter(type="devices.refused", data__item=str(world["item"].pk))
    return {
        "refused": refusals.count(),
        "windows": len(windows),
        "events": events.count(),
        "counted": sum(e.data["count"] for e in events),
        "deliveries": WebhookDelivery.objects.filter(endpoint__organization=world["org"]).count(),
        "seconds": time.perf_counter() - t0,
    }


def compare(runs: list[dict], key: str) -> dict:
    """Medians of ``key`` per side, their ratio (with / without), and the noise: the largest
    spread (max - min) / median of one side's runs."""
    sides = {s: [r[key] for r in runs if r["subscribed"] is s] for s in (False, True)}
    medians = {s: statistics.median(v) for s, v in sides.items()}
    noise = max((max(v) - min(v)) / statistics.median(v) for v in sides.values() if statistics.median(v))
    return {"without": medians[False], "with": medians[True], "ratio": medians[True] / medians[False], "noise": noise}


def _verdict(compared: dict) -> str:
    """Whether a ratio with / without is inside the noise of one side's runs, and which way it
    points when it is not."""
    if abs(compared["ratio"] - 1) <= compared["noise"]:
        return f"is within the noise ({compared['ratio']:.3f}, ±{compared['noise'] * 100:.1f} %)"
    way = "higher" if compared["ratio"] > 1 else "lower"
    return f"is {way}, OUTSIDE the noise ({compared['ratio']:.3f}, ±{compared['noise'] * 100:.1f} %)"


def table(result: dict) -> str:
    hot, load, after = result["in_process"], result["load"], result["coalesce"]
    rate, load_rps = compare(hot, "rate"), compare(load, "rps")
    statements = {s: statistics.median(r["statements"] for r in hot if r["subscribed"] is s) for s in (False, True)}
    cpu = compare(hot, "web_cpu_ms")
    lines = [
        f"Run {timezone.now():%Y-%m-%d %H:%M} UTC{' (--quick)' if result['quick'] else ''}; 1-minute load average "
        f"{result['loadavg']:.1f} at the start. Every request refused (a seat item of quantity 1, its seat taken), "
        f"so each writes its decision; {len(ORDER)} runs per row, alternating without / with an endpoint of the "
        "organization subscribed to `devices.refused` (ABBAAB).",
        "",
        "| refused authorize | without endpoint | with endpoint | with / without | noise (spread of one side) |",
        "|---|---:|---:|---:|---:|",
        f"| under load: requests/s ({result['concurrency']} threads, gunicorn) | {load_rps['without']:,.0f} | "
        f"{load_rps['with']:,.0f} | {load_rps['ratio']:.3f} | ±{load_rps['noise'] * 100:.1f} % |",
        f"| in-process: sequential requests/s | {rate['without']:,.0f} | {rate['with']:,.0f} | {rate['ratio']:.3f} | "
        f"±{rate['noise'] * 100:.1f} % |",
        f"| in-process: web CPU ms per request | {cpu['without']:.2f} | {cpu['with']:.2f} | {cpu['ratio']:.3f} | "
        f"±{cpu['noise'] * 100:.1f} % |",
        f"| in-process: SQL statements per request | {statements[False]:.1f} | {statements[True]:.1f} | "
        f"{statements[True] / statements[False]:.3f} | |",
        "",
        "Runs under load (requests/s, load average at each start): "
        + ", ".join(f"{'with' if r['subscribed'] else 'without'} {r['rps']:,.0f} ({r['loadavg']:.1f})" for r in load)
        + ". Answers: "
        + ", ".join(sorted({k for r in load for k in r["statuses"]}))
        + f". Verdict: with the endpoint, throughput under load {_verdict(load_rps)}; the in-process sequential rate "
        f"{_verdict(rate)}.",
        "",
        f"Then the delivery step once, as after the windows closed: {after['refused']:,} refusals of the run, in "
        f"{after['windows']} 10-minute window(s), became {after['events']} `devices.refused` event(s) (one per "
        f"item, rule and window; counts adding up to {after['counted']:,}) and {after['deliveries']} "
        f"delivery(ies), in {after['seconds'] * 1000:.0f} ms.",
    ]
    return "\n".join(lines) + "\n"


def write_doc(text: str, doc: Path | None = None) -> None:
    """Replace this section of docs/benchmarks.md (or add it), keeping the others."""
    doc = doc or DOC
    section = (
        f"## {SECTION}\n\n"
        "`make bench` (`bench_api`, `client/tools/bench_webhooks.py`). A refused authorization already "
        "writes its decision; `devices.refused` events are coalesced from the decisions by the delivery "
        "step (Celery, every 10 s), so an endpoint subscribed to them adds no statement to the device "
        "API's request (docs/admin-api.md).\n\n" + text
    )
    current = doc.read_text() if doc.exists() else "# Benchmarks\n"
    match = re.search(rf"^## {re.escape(SECTION)}\n.*?(?=^## |\Z)", current, flags=re.S | re.M)
    if match:
        rest = current[match.end() :]
        current = current[: match.start()] + section + ("\n" if rest else "") + rest
    else:
        current = current.rstrip("\n") + "\n\n" + section
    doc.write_text(current)


def run(base: str, plan: dict, *, quick: bool, write_doc_too: bool, say, out) -> dict:
    """The whole figure against the server at ``base``: prints the table, and writes it into
    docs/benchmarks.md when asked."""
    started = timezone.now()
    world = create_world(started)
    say(f"webhooks: refused authorize without / with an endpoint, {len(ORDER)} runs each way (in-process, load)")
    load_plan = dict(plan, duration=min(plan["duration"], 2.0 if quick else 10.0))
    result = {"quick": quick, "loadavg": os.getloadavg()[0], "concurrency": plan["concurrency"]}
    result["in_process"] = in_process(world, 50 if quick else 300)
    result["load"] = under_load(base, world, load_plan)
    result["coalesce"] = coalesce(world, started)
    text = table(result)
    out.write(text)
    if write_doc_too:
        write_doc(text)
        say(f"wrote docs/benchmarks.md, section {SECTION}")
    return result

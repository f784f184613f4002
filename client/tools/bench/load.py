"""The load of ``bench_api``: the load generator (``python -m client.tools.loadgen``, a process of
its own) against gunicorn, one scenario per run, each between two runs of the trivial endpoint
(GET /healthz/ping: same server, middleware and JSON, no database), so every ratio compares
figures taken within seconds of each other on the shared machine.

Every run (the pings too) carries the CPU each process group used in its measured window
(``bench.cpu``, taken by the load generator at the window's edges) and, for the scenarios, what
the database's active backends waited on (``bench.waits``, sampled from this process)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

from django.core.management.base import CommandError

from client.tools.bench import waits
from client.tools.bench.common import ROOT, loadavg

# name, what it measures (the table's label)
SCENARIOS = [
    ("authorize", "POST /api/v1/authorize (a pool of devices on a 1,000-seat item: new, again, refused)"),
    ("usage", "POST /api/v1/usage, every report into one scan item"),
    ("usage_spread", "POST /api/v1/usage, reports spread over 100 scan items"),
    ("new_0", "POST /api/v1/authorize, a new device each, seat item with 0 seats taken"),
    ("new_40k", "POST /api/v1/authorize, a new device each, seat item with 40,000 seats taken"),
]


def loadgen(plan: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "client.tools.loadgen"], cwd=ROOT, input=json.dumps(plan).encode(),
        capture_output=True, timeout=plan["duration"] * 10 + 600,
    )  # fmt: skip
    if result.returncode:
        raise CommandError(f"the load generator failed: {result.stderr.decode()[-2000:]}")
    return json.loads(result.stdout)


def run(base: str, world: dict, plan: dict, say, *, gunicorn_pid: int, conninfo: str) -> dict:
    """Each scenario's figures (requests/s, p50/p99, answers, ``cpu`` and ``waits``),
    ``ping_rps``/``ping_p50_ms``/``ping_p99_ms`` the mean of the ping runs before and after it,
    and the load average. ``gunicorn_pid``: the master (its workers are its children);
    ``conninfo``: the bench database, for the wait sampler."""
    run_id = secrets.token_hex(4)
    common = {"base_url": base, "run": run_id, "concurrency": plan["concurrency"], "duration": plan["duration"],
              "warmup": plan["warmup"], "usage_devices": [], "duplicate_fraction": 0.05,
              "cpu_groups": {"gunicorn": [gunicorn_pid]}}  # fmt: skip
    sampler = waits.Sampler(conninfo)
    api_key = world["api_project"].license_key
    spread = [f"spread-{run_id}-{i:04d}" for i in range(2 * len(world["spread_scans"]))]
    plans = {
        "authorize": {"license_key": api_key,
                      "authorize_devices": [f"auth-{run_id}-{i:05d}" for i in range(plan["authorize_pool"])]},
        "usage": {"license_key": api_key, "usage_devices": [f"use-{run_id}-{i:04d}" for i in range(plan["usage_devices"])]},
        "usage_spread": {"license_key": api_key, "usage_devices": spread,
                         "keys": {uuid: world["spread_scans"][i % len(world["spread_scans"])].project.license_key
                                  for i, uuid in enumerate(spread)}},
        "new_0": {"license_key": world["load_seats_empty"].project.license_key, "authorize_devices": "new"},
        "new_40k": {"license_key": world["hot_seats_full"].project.license_key, "authorize_devices": "new"},
    }  # fmt: skip
    scenario = {"usage_spread": "usage", "new_0": "authorize", "new_40k": "authorize"}
    say(f"load: {plan['concurrency']} threads, {plan['duration']:g} s per run, ping between every two runs")
    results: dict = {"loadavg_start": loadavg(), "run": run_id}

    def ping() -> dict:
        return loadgen(common | {"license_key": api_key, "scenarios": ["ping"]})["ping"]

    before = ping()
    pings = [before]
    for name, _ in SCENARIOS:
        load_before = loadavg()
        with sampler.running():
            out = loadgen(common | plans[name] | {"scenarios": [scenario.get(name, name)]})
        result = out[scenario.get(name, name)] | {"prepare": out["prepare"], "loadavg": load_before}
        result["waits"] = sampler.shares(tuple(result["window"]))
        after = ping()
        pings.append(after)
        for key in ("rps", "p50_ms", "p99_ms"):
            result[f"ping_{key}"] = (before[key] + after[key]) / 2
        results[name] = result
        busy, lock = result["cpu"]["utilization"], result["waits"]["lock"]
        say(f"  {name}: {result['rps']:,.0f} req/s (ping {result['ping_rps']:,.0f}), p99 {result['p99_ms']:,.0f} ms, "
            f"machine {busy:.0%} busy, Lock {lock:.0%} of active-backend samples")  # fmt: skip
        before = after
    results["pings"] = pings
    if plan.get("wide_concurrency"):
        # The issue's own concurrency (wrk at 32 connections): the trivial endpoint and the reports
        # into the hot item once more, so that the p99 goal is read where the issue set it, beside
        # what an endpoint doing nothing gets there. Fresh devices and report ids (run id + "w").
        wide = common | {"concurrency": plan["wide_concurrency"], "run": f"{run_id}w"}
        results["wide"] = {"concurrency": plan["wide_concurrency"], "loadavg": loadavg()}
        results["wide"]["ping"] = loadgen(wide | {"license_key": api_key, "scenarios": ["ping"]})["ping"]
        devices = [f"use-{run_id}w-{i:04d}" for i in range(plan["usage_devices"])]
        with sampler.running():
            out = loadgen(wide | {"license_key": api_key, "usage_devices": devices, "scenarios": ["usage"]})
        results["wide"]["usage"] = out["usage"] | {"waits": sampler.shares(tuple(out["usage"]["window"]))}
        w = results["wide"]
        say(f"  at {w['concurrency']} connections: ping p99 {w['ping']['p99_ms']:,.0f} ms, usage {w['usage']['rps']:,.0f} "
            f"req/s, p99 {w['usage']['p99_ms']:,.0f} ms")  # fmt: skip
    results["loadavg_end"] = loadavg()
    return results

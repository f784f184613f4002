"""What ``bench_api`` prints: the fleet-scale issue's table first (each goal beside the figure of
this run), then the load, in-process and page tables it comes from, the invariants; and the
docs/benchmarks.md writer (section "API", the other sections kept)."""

from __future__ import annotations

import re
from pathlib import Path

from django.utils import timezone

from client.tools.bench import common
from client.tools.bench.load import SCENARIOS

REPORTS_PER_S = 5600  # "1,000,000 devices send 5,600/s in all"


def _hot(hot: list[dict], prefix: str) -> dict:
    return next((r for r in hot if r["what"].startswith(prefix)), {})


def _ok(status: bool) -> str:
    return "met" if status else "not met"


def _page(pages: list[dict], label: str) -> dict:
    return next((p for p in pages if p["page"] == label), {"p50_ms": float("nan"), "p95_ms": float("nan")})


def _ok_per_s(result: dict, duration: float) -> float:
    return result["statuses"].get("200", 0) / duration


def summary(plan: dict, load: dict, hot: list[dict], pages: list[dict], memory: dict) -> str:
    """The issue's table: what, this run's figure, the goal, met or not."""
    d = plan["duration"]
    auth, usage = load["authorize"], load["usage"]
    usage_hot = _hot(hot, "usage")
    floor = _hot(hot, "floor")
    authorize_rows = [r for r in hot if r["what"].startswith("authorize")]
    per_report_ms = usage_hot.get("web_cpu_ms", 0) + (usage_hot.get("db_cpu_ms") or 0)
    cores = REPORTS_PER_S * per_report_ms / 1000
    one_item = usage["accepted"] / d
    spread = load["usage_spread"]["accepted"] / d
    new_0, new_40k = _ok_per_s(load["new_0"], d), _ok_per_s(load["new_40k"], d)
    stats, csv, search = _page(pages, "statistics"), _page(pages, "devices.csv (all)"), _page(pages, "devices, search")
    statements_auth = max((r["statements"] for r in authorize_rows), default=float("nan"))
    db = usage_hot.get("db_cpu_ms")
    rows = [
        ("authorize throughput vs trivial endpoint", f"{auth['rps'] / auth['ping_rps']:.2f}x "
         f"({auth['rps']:,.0f} vs {auth['ping_rps']:,.0f} req/s)", ">= 0.5x", auth["rps"] / auth["ping_rps"] >= 0.5),
        ("usage throughput vs trivial endpoint", f"{usage['rps'] / usage['ping_rps']:.2f}x "
         f"({usage['rps']:,.0f} vs {usage['ping_rps']:,.0f} req/s)", ">= 0.5x", usage["rps"] / usage["ping_rps"] >= 0.5),
        (f"p50 / p99 at {plan['concurrency']} connections", f"authorize {auth['p50_ms']:,.0f} / {auth['p99_ms']:,.0f} ms, "
         f"usage {usage['p50_ms']:,.0f} / {usage['p99_ms']:,.0f} ms (trivial {usage['ping_p50_ms']:,.0f} / "
         f"{usage['ping_p99_ms']:,.0f} ms)", "p99 <= 50 ms", max(auth["p99_ms"], usage["p99_ms"]) <= 50),
        ("SQL statements per usage report", f"{usage_hot.get('statements', float('nan')):.2f}", "<= 4, one transaction",
         usage_hot.get("statements", 99) <= 4),
        ("SQL statements per authorize", f"{statements_auth:.2f} (the most of the authorize rows)", "<= 5", statements_auth <= 5),
        ("web CPU per usage report", f"{usage_hot.get('web_cpu_ms', float('nan')):.2f} ms (do-nothing ninja POST "
         f"{floor.get('web_cpu_ms', float('nan')):.2f} ms)", "<= 2.5 ms", usage_hot.get("web_cpu_ms", 99) <= 2.5),
        ("PostgreSQL CPU per report", "n/a" if db is None else f"{db:.2f} ms", "<= 1.5 ms", db is not None and db <= 1.5),
        ("reports/s into one scan item", f"{one_item:,.0f} (spread over {len(load.get('spread_items', [])) or 100} "
         f"items: {spread:,.0f})", ">= 2,000", one_item >= 2000),
        ("new devices/s into one seat item", f"{new_0:,.0f} at 0 seats taken, {new_40k:,.0f} at 40,000",
         ">= 1,000, flat in the number of seats", min(new_0, new_40k) >= 1000 and new_40k >= 0.8 * new_0),
        (f"statistics page, {plan['devices']:,} devices / {plan['reports']:,} reports",
         f"p50 {stats['p50_ms']:,.0f} ms, p95 {stats['p95_ms']:,.0f} ms", "p95 <= 200 ms", stats["p95_ms"] <= 200),
        (f"devices.csv, {plan['devices']:,} devices", f"p50 {csv['p50_ms']:,.0f} ms, p95 {csv['p95_ms']:,.0f} ms; "
         f"{memory['bytes'] / 2**20:.1f} MiB streamed in {memory['chunks']:,} chunks, Python heap peak "
         f"{memory['peak_bytes'] / 2**20:.2f} MiB", "<= 500 ms, streamed, flat memory",
         csv["p95_ms"] <= 500 and memory["peak_bytes"] < memory["bytes"] / 4),
        (f"device search, {plan['devices']:,} devices", f"p50 {search['p50_ms']:,.0f} ms, p95 {search['p95_ms']:,.0f} ms",
         "<= 100 ms", search["p95_ms"] <= 100),
        ("cores for 5,600 reports/s (on paper)", f"{cores:.1f} (web + PostgreSQL CPU per report {per_report_ms:.2f} ms)",
         "<= 15", cores <= 15),
    ]  # fmt: skip
    lines = ["| what | this run | goal | status |", "|---|---|---|---|"]
    lines += [f"| {what} | {figure} | {goal} | {_ok(ok)} |" for what, figure, goal, ok in rows]
    return "\n".join(lines)


def table(plan, load, hot, pages, memory, invariants, *, server: dict, generate_s: float, rollup_s: float) -> str:
    quick = plan["devices"] < 100_000
    lines = [
        f"Run {timezone.now():%Y-%m-%d %H:%M} UTC{' (--quick)' if quick else ''}. Machine: {common.machine()}. "
        f"1-minute load average {load['loadavg_start']:.1f} when the load started, {load['loadavg_end']:.1f} when "
        "it ended (anything above about 1 on this machine is other work competing for its CPUs).",
        "",
        summary(plan, load, hot, pages, memory),
        "",
        f"Server: gunicorn on 127.0.0.1, {server['workers']} workers x {server['threads']} threads, production "
        f"settings over HTTP, cache and rate-limit counters in {'Redis' if server['redis'] else 'local memory'}. "
        f"Load: `python -m client.tools.loadgen` in another process, {plan['concurrency']} threads with keep-alive "
        f"connections, {plan['duration']:g} s measured per run after {plan['warmup']:g} s of warm-up; each run "
        "sits between two runs of the trivial endpoint (GET /healthz/ping), whose mean is its baseline:",
        "",
        "| run | requests/s | p50 ms | p99 ms | ping req/s | vs ping | p99 vs ping | load avg | answers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, label in SCENARIOS:
        r = load[name]
        answers = ", ".join(f"{k}: {v:,}" for k, v in r["statuses"].items())
        if r["codes"]:
            answers += " (codes " + ", ".join(f"{k}: {v:,}" for k, v in r["codes"].items()) + ")"
        if r["errors"]:
            answers += f", {r['errors']} transport errors"
        lines.append(
            f"| {label} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['ping_rps']:,.0f} | "
            f"{r['rps'] / r['ping_rps']:.2f} | {r['p99_ms'] / r['ping_p99_ms']:.1f} | {r['loadavg']:.1f} | {answers} |"
        )
    lines += [
        "",
        "In-process, one request at a time through the whole Django stack (`client/tools/hotpath.py`): "
        "SQL statements per request (BEGIN/COMMIT not counted), CPU of this process (views, ORM, psycopg, "
        "signing) and of its PostgreSQL backend per request, and the sequential rate:",
        "",
        "| request | statements | web CPU ms | PostgreSQL CPU ms | sequential req/s | answers |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in hot:
        db = f"{r['db_cpu_ms']:.2f}" if r.get("db_cpu_ms") is not None else "n/a"
        answers = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
        lines.append(
            f"| {r['what']} | {r['statements']:.1f} | {r['web_cpu_ms']:.2f} | {db} | {r['rate']:,.0f} | {answers} |"
        )
    lines += [
        "",
        f"Portal pages and exports of one project with {plan['devices']:,} devices and {plan['reports']:,} usage "
        f"reports (generated with SQL in {generate_s:.0f} s; `rollup_usage` over them took {rollup_s:.1f} s), "
        f"logged in as its owner, up to {plan['page_repeats']} requests each, one at a time, the whole body read "
        f"(a page slower than 10 s is timed once only):",
        "",
        "| page | status | size | requests | p50 ms | p95 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for p in pages:
        path = p["url"].split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "/"
        query = "?" + p["url"].split("?")[1] if "?" in p["url"] else ""
        lines.append(
            f"| {p['page']} (`{path}{query}`) | {p['status']} | {p['bytes'] / 1024:,.0f} KiB | {p['requests']} | "
            f"{p['p50_ms']:,.0f} | {p['p95_ms']:,.0f} |"
        )
    lines += [
        "",
        f"devices.csv streamed in-process (`usage.exports.stream_csv`): {memory['bytes']:,} bytes in "
        f"{memory['chunks']:,} chunks in {memory['ms']:,.0f} ms; Python heap peak {memory['peak_bytes'] / 2**20:.2f} MiB "
        "(tracemalloc), whatever the number of devices.",
        "",
        "Invariants after the load:",
        "",
    ]
    for name, (ok, detail) in invariants.items():
        lines.append(f"- {'OK' if ok else 'FAILED'}: {name}: {detail}.")
    return "\n".join(lines) + "\n"


INTRO = (
    "`make bench` (API part: `DATABASE_URL=postgres://... python manage.py bench_api --write-doc`; "
    "`--quick` for a smoke run). The first table is the fleet-scale issue's, with this run's figures. "
    "The ratios compare each endpoint with a trivial JSON endpoint of the same app on the same server, "
    "measured just before and after it, so they carry over to other machines better than the absolute "
    "figures."
)
BOUNDS = (
    "What bounds the API figures: an authorization of a new device on a seat item takes its seat "
    "with one conditional UPDATE of the item's seat counter row (devices.seats), held to the commit "
    "over the device insert and its decision; a usage report on a scan or page item ends with the "
    "upsert of the item's counter row, held from that last statement to the commit. Requests for "
    "one item are serialized over that tail only; requests for different items run in parallel "
    "(the spread run). The portal pages are timed one request at a time after the load has stopped. "
    'See "Hot path" below for the design and what each goal is bounded by.'
)


def write_doc(table_text: str, doc: Path | None = None) -> None:
    """Replace the "## API" section of docs/benchmarks.md (or add it), keeping the others."""
    doc = doc or common.DOC
    section = "## API\n\n" + INTRO + "\n\n" + table_text + "\n" + BOUNDS + "\n"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    match = re.search(r"^## API\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    if match:
        text = text[: match.start()] + section + ("\n" if text[match.end() :] else "") + text[match.end() :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text)

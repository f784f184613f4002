"""What ``bench_api`` prints: the fleet-scale issue's table first (each goal beside the figure of
this run and what bounds it), then the load table, what bounds each load run (CPU per request
per process group, machine utilization, database waits, Little's law, one hot row alone in
pgbench), the in-process and page tables, the invariants; and the docs/benchmarks.md writer
(section "API", the other sections kept)."""

from __future__ import annotations

import re
from pathlib import Path

from django.utils import timezone

from client.tools import hotpath
from client.tools.bench import common
from client.tools.bench.load import SCENARIOS
from client.tools.bench.pages import QUIET_BUSY, QUIET_WINDOW_S

REPORTS_PER_S = 5600  # "1,000,000 devices send 5,600/s in all"


def _ok(status: bool) -> str:
    return "met" if status else "not met"


def _page(pages: list[dict], label: str) -> dict:
    return next((p for p in pages if p["page"] == label), {"p50_ms": float("nan"), "p95_ms": float("nan")})


def _ok_per_s(result: dict, duration: float) -> float:
    return result["statuses"].get("200", 0) / duration


CPU_BOUND = 0.9  # machine utilization from which a run counts as CPU-bound
LOCK_BOUND = 0.3  # share of active-backend samples waiting on a Lock from which the row is the bound


def _cpu(run: dict) -> dict | None:
    """CPU ms per request of a load run by group (``web`` gunicorn, ``db`` PostgreSQL, ``gen``
    the load generator, ``other``), ``bench`` (web + db + gen), ``server`` (web + db), and the
    machine's utilization; None without accounting."""
    cpu = run.get("cpu")
    requests = run.get("requests") or round(run.get("rps", 0) * cpu["wall_s"]) if cpu else 0
    if not cpu or not requests:
        return None
    s = cpu["seconds"]
    per = {"web": s.get("gunicorn", 0.0), "db": s.get("postgres", 0.0), "gen": s.get("loadgen", s.get("pgbench", 0.0)),
           "other": s.get("other", 0.0)}  # fmt: skip
    out = {k: v * 1000 / requests for k, v in per.items()}
    out["bench"] = out["web"] + out["db"] + out["gen"]
    out["server"] = out["web"] + out["db"]
    out["busy"] = cpu["utilization"]
    out["cores"] = cpu["cores"]
    out["ours"] = (per["web"] + per["db"] + per["gen"]) / cpu["busy_s"] if cpu["busy_s"] else float("nan")
    return out


def _pings(load: dict) -> dict:
    """The ping runs together: their CPU seconds and requests summed (one accounting)."""
    runs = [r for r in load.get("pings", []) if r.get("cpu")]
    if not runs:
        return {}
    seconds: dict[str, float] = {}
    for r in runs:
        for k, v in r["cpu"]["seconds"].items():
            seconds[k] = seconds.get(k, 0.0) + v
    wall = sum(r["cpu"]["wall_s"] for r in runs)
    busy = sum(r["cpu"]["busy_s"] for r in runs)
    cores = runs[0]["cpu"]["cores"]
    cpu = {"seconds": seconds, "wall_s": wall, "busy_s": busy, "cores": cores, "utilization": busy / (cores * wall)}
    requests = sum(r["requests"] for r in runs)
    return {"cpu": cpu, "requests": requests, "rps": requests / wall, "runs": len(runs),
            "mean_ms": sum(r.get("mean_ms", 0) * r["requests"] for r in runs) / requests if requests else float("nan")}  # fmt: skip


def verdict(busy: float, lock: float | None, ours: float | None = None) -> str:
    """CPU-bound when the machine is busy (``ours``: the benchmark's processes' share of the busy
    time); else lock-bound when the active backends mostly wait on a Lock."""
    locked = lock is not None and lock == lock and lock >= LOCK_BOUND
    share = f", {ours:.0%} of it this benchmark's processes" if ours is not None else ""
    if busy >= CPU_BOUND:
        text = f"CPU-bound: {busy:.0%} busy{share}"
        if locked:
            text += f"; {lock:.0%} of active backends wait on a Lock (queued on one row: compare the spread run)"
        return text
    if locked:
        return f"lock-bound: {lock:.0%} of active backends wait on a Lock ({busy:.0%} busy{share})"
    sampled = f", Lock {lock:.0%}" if lock is not None and lock == lock else ""  # (no waits sampled: the pings)
    return f"neither CPU nor row lock: {busy:.0%} busy{share}{sampled}"


def _alone(r: dict) -> dict:
    """pgbench's CPU per transaction: ``db``, ``gen`` (pgbench), ``other``, the ceiling that CPU
    allows (cores / (db + gen)), the utilization and the benchmark's share of it."""
    cpu, n = r["cpu"], r["transactions"] or 1
    s = cpu["seconds"]
    db, gen, other = (s.get(k, 0.0) * 1000 / n for k in ("postgres", "pgbench", "other"))
    ours = (s.get("postgres", 0.0) + s.get("pgbench", 0.0)) / cpu["busy_s"] if cpu["busy_s"] else float("nan")
    ceiling = cpu["cores"] / (db + gen) * 1000 if db + gen else float("nan")
    return {"db": db, "gen": gen, "other": other, "ceiling": ceiling, "busy": cpu["utilization"], "ours": ours}


def _lock(run: dict) -> float | None:
    w = run.get("waits")
    return w["lock"] if w else None


def _row(hot: list[dict], label: str) -> dict:
    """The in-process row of exactly that label ({} if it was not measured)."""
    return next((r for r in hot if r["what"] == label), {})


def _floor(load: dict, hot: list[dict], hot_rows: dict, *, run: str, row: str, alone: str) -> dict | None:
    """What a request of load run ``run`` would cost on this machine with every overhead at the
    trivial endpoint's: HTTP, gunicorn and the middleware as the trivial endpoint's web CPU under the
    same server (``http``); the request's own work in the Django stack as the code does it now, the
    in-process web CPU of row ``row`` above the do-nothing POST's (``app``); its writes as its SQL
    does them now, replayed alone by pgbench at the load's concurrency with no web server and no
    read (``sql``: PostgreSQL CPU per transaction of ``alone``); the load generator's CPU per request
    in the run (``gen``). With the rate that allows (``ceiling``, and ``ceiling_server`` with the load
    generator elsewhere) and its ratio to the trivial endpoint's measured rate beside the run
    (``ratio``). None when a part was not measured."""
    ping, c, r = _cpu(_pings(load)), _cpu(load.get(run, {})), load.get(run, {})
    request, nothing = _row(hot, row), _row(hot, hotpath.NOTHING_ROW)
    if not (ping and c and request and nothing and hot_rows.get(alone) and r.get("ping_rps")):
        return None
    parts = {"http": ping["web"], "app": max(0.0, request["web_cpu_ms"] - nothing["web_cpu_ms"]),
             "sql": _alone(hot_rows[alone])["db"], "gen": c["gen"]}  # fmt: skip
    total = sum(parts.values())
    ceiling = c["cores"] / total * 1000
    return parts | {"total": total, "cores": c["cores"], "ping_rps": r["ping_rps"], "ceiling": ceiling,
                    "ratio": ceiling / r["ping_rps"], "ceiling_server": c["cores"] / (total - parts["gen"]) * 1000}  # fmt: skip


def _budget(f: dict, rate: float, *, server_only: bool = False) -> str:
    """How much CPU the request's own work and writes (``app`` + ``sql``) may take for ``rate``
    req/s on these cores with every overhead at the trivial endpoint's, against what they take now."""
    room = f["cores"] * 1000 / rate - f["http"] - (0.0 if server_only else f["gen"])
    now = f["app"] + f["sql"]
    if room <= 0:
        return f"out of reach on these cores whatever the request does ({now:.2f} ms now)"
    return f"needs its own work and writes within {room:.2f} ms ({now:.2f} now)"


def _floor_parts(f: dict, what: str) -> str:
    return (f"with every overhead at the trivial endpoint's (HTTP and middleware {f['http']:.2f} ms, {what}'s own work "
            f"as now {f['app']:.2f} ms in-process above a do-nothing POST, its writes as now {f['sql']:.2f} ms of "
            f"PostgreSQL alone in pgbench, the load generator {f['gen']:.2f} ms) {what} would cost {f['total']:.2f} ms")  # fmt: skip


def _floor_ratio(f: dict | None, what: str) -> str:
    if not f:
        return ""
    return (f"; {_floor_parts(f, what)}: {f['ceiling']:,.0f} req/s, {f['ratio']:.2f}x the trivial endpoint's "
            f"{f['ping_rps']:,.0f}; 0.5x {_budget(f, 0.5 * f['ping_rps'])}")  # fmt: skip


def _floor_rate(f: dict | None, what: str, goal: float) -> str:
    if not f:
        return ""
    return (f"; {_floor_parts(f, what)}: {f['ceiling']:,.0f} req/s ({f['ceiling_server']:,.0f} with the load generator on "
            f"a host of its own); {goal:,.0f} req/s {_budget(f, goal)}, with the load generator elsewhere "
            f"{_budget(f, goal, server_only=True)}")  # fmt: skip


def _bound_ratio(run: dict, load: dict, floor: str = "") -> str:
    c = _cpu(run)
    if not c or not run.get("ping_rps"):
        return "-"
    ceiling = c["cores"] / c["bench"] * 1000
    return (f"{verdict(c['busy'], _lock(run), c['ours'])}; CPU per request {c['bench']:.2f} ms (web {c['web']:.2f}, "
            f"PostgreSQL {c['db']:.2f}, load generator {c['gen']:.2f}): its CPU ceiling of {ceiling:,.0f} req/s is "
            f"{ceiling / run['ping_rps']:.2f}x the trivial endpoint's measured {run['ping_rps']:,.0f}{floor}")  # fmt: skip


def _bound_p99(plan: dict, load: dict, floor: dict | None = None) -> str:
    """Little's law for the closed loop: at N connections the mean latency is N / throughput, so
    a p99 goal needs a throughput of at least N / goal; even at the CPU ceiling the mean is
    N / ceiling."""
    n, parts = plan["concurrency"], []
    for name in ("authorize", "usage"):
        r = load[name]
        if not r.get("rps"):
            continue
        text = f"{name}: {n} / {r['rps']:,.0f} req/s = {n / r['rps'] * 1000:,.0f} ms mean"
        if "mean_ms" in r:
            text += f" (measured {r['mean_ms']:,.0f})"
        c = _cpu(r)
        if c:
            ceiling = c["cores"] / c["bench"] * 1000
            text += f", and even at its CPU ceiling of {ceiling:,.0f} req/s {n / ceiling * 1000:,.0f} ms"
        parts.append(text)
    wide = load.get("wide")
    if wide:
        p99 = wide["ping"]["p99_ms"]
        parts.append(f"at the issue's {wide['concurrency']} connections usage p99 {wide['usage']['p99_ms']:,.0f} ms and "
                     f"the trivial endpoint's own p99 {p99:,.0f} ms"
                     + (" (an endpoint that does nothing misses the goal there)" if p99 > 50 else ""))  # fmt: skip
    if floor:
        means = [f"{n / floor['ceiling'] * 1000:,.0f} ms at {n}"]
        if wide:
            means.append(f"{wide['concurrency'] / floor['ceiling'] * 1000:,.0f} ms at {wide['concurrency']}")
        parts.append(f"at a report's floor rate ({floor['ceiling']:,.0f} req/s, above) the mean would be "
                     + " and ".join(means))  # fmt: skip
    if not parts:
        return "-"
    return (f"Little's law: mean latency = connections / throughput; a mean under 50 ms at {n} connections "
            f"needs {n / 0.05:,.0f} req/s; " + "; ".join(parts))  # fmt: skip


def _bound_hot(
    run: dict, alone: dict | None, label: str, spread: dict | None = None, no_flush: dict | None = None, floor: str = ""
) -> str:
    c = _cpu(run)
    if not c:
        return "-"
    text = (f"{verdict(c['busy'], _lock(run), c['ours'])}; CPU ceiling {c['cores'] / c['bench'] * 1000:,.0f} req/s "
            f"({c['cores']} cores / {c['bench']:.2f} ms per request)")  # fmt: skip
    lock = _lock(run)
    if lock is not None and lock == lock:
        text += f"; Lock {lock:.0%} of active-backend samples"
    if spread and spread.get("rps"):
        text += f"; the same requests spread over 100 items: {spread['rps']:,.0f} req/s, Lock {_lock(spread) or 0:.0%}"
    if alone:
        a = _alone(alone)
        text += (f"; {label} alone in pgbench: {alone['tps']:,.0f} tps at {alone['clients']} clients (its CPU "
                 f"allows {a['ceiling']:,.0f}; Lock {alone['waits']['lock']:.0%}, {a['busy']:.0%} busy)")  # fmt: skip
        if no_flush:
            text += f", {no_flush['tps']:,.0f} tps without waiting for the WAL flush"
    return text + floor


def summary(
    plan: dict, load: dict, hot: list[dict], pages: list[dict], memory: dict, hot_rows: dict | None = None
) -> str:
    """The issue's table: what, this run's figure, the goal, met or not, what bounds it (from
    this run's profile: CPU accounting, waits, the hot row alone)."""
    hot_rows = hot_rows or {}
    d = plan["duration"]
    auth, usage = load["authorize"], load["usage"]
    usage_hot = _row(hot, hotpath.USAGE_ROW)
    floor = _row(hot, hotpath.NOTHING_ROW)
    seen_hot = _row(hot, hotpath.SIGHTINGS_ROW)
    authorize_rows = [r for r in hot if r["what"].startswith("authorize")]
    per_report_ms = usage_hot.get("web_cpu_ms", 0) + (usage_hot.get("db_cpu_ms") or 0)
    cores = REPORTS_PER_S * per_report_ms / 1000
    one_item = usage.get("accepted_rps", usage["accepted"] / d)  # accepted reports in the measured window
    spread = load["usage_spread"].get("accepted_rps", load["usage_spread"]["accepted"] / d)
    new_0, new_40k = _ok_per_s(load["new_0"], d), _ok_per_s(load["new_40k"], d)
    stats, csv, search = _page(pages, "statistics"), _page(pages, "devices.csv (all)"), _page(pages, "devices, search")
    statements_auth = max((r["statements"] for r in authorize_rows), default=float("nan"))
    db = usage_hot.get("db_cpu_ms")
    report_floor = _floor(load, hot, hot_rows, run="usage", row=hotpath.USAGE_ROW, alone="usage")
    new_floor = _floor(load, hot, hot_rows, run="new_0", row=hotpath.NEW_DEVICE_ROW, alone="seat")
    wide = load.get("wide")
    p99_met = max(auth["p99_ms"], usage["p99_ms"]) <= 50 and (not wide or wide["usage"]["p99_ms"] <= 50)
    rows: list[tuple] = [
        ("authorize throughput vs trivial endpoint", f"{auth['rps'] / auth['ping_rps']:.2f}x "
         f"({auth['rps']:,.0f} vs {auth['ping_rps']:,.0f} req/s)", ">= 0.5x", auth["rps"] / auth["ping_rps"] >= 0.5,
         _bound_ratio(auth, load)),
        ("usage throughput vs trivial endpoint", f"{usage['rps'] / usage['ping_rps']:.2f}x "
         f"({usage['rps']:,.0f} vs {usage['ping_rps']:,.0f} req/s)", ">= 0.5x", usage["rps"] / usage["ping_rps"] >= 0.5,
         _bound_ratio(usage, load, _floor_ratio(report_floor, "a report"))),
        (f"p50 / p99 at {plan['concurrency']} connections", f"authorize {auth['p50_ms']:,.0f} / {auth['p99_ms']:,.0f} ms, "
         f"usage {usage['p50_ms']:,.0f} / {usage['p99_ms']:,.0f} ms (trivial {usage['ping_p50_ms']:,.0f} / "
         f"{usage['ping_p99_ms']:,.0f} ms)", "p99 <= 50 ms", p99_met,
         _bound_p99(plan, load, report_floor)),
        ("SQL statements per usage report", f"{usage_hot.get('statements', float('nan')):.2f}"
         + (f" (with 2 barcode sightings: {seen_hot['statements']:.2f}, the device's dedup memory read and merged)"
            if seen_hot else ""), "<= 4, one transaction", usage_hot.get("statements", 99) <= 4),
        ("SQL statements per authorize", f"{statements_auth:.2f} (the most of the authorize rows)", "<= 5", statements_auth <= 5),
        ("web CPU per usage report", f"{usage_hot.get('web_cpu_ms', float('nan')):.2f} ms (do-nothing ninja POST "
         f"{floor.get('web_cpu_ms', float('nan')):.2f} ms)", "<= 2.5 ms", usage_hot.get("web_cpu_ms", 99) <= 2.5),
        ("PostgreSQL CPU per report", "n/a" if db is None else f"{db:.2f} ms", "<= 1.5 ms", db is not None and db <= 1.5),
        ("reports/s into one scan item", f"{one_item:,.0f} (spread over {len(load.get('spread_items', [])) or 100} "
         f"items: {spread:,.0f})", ">= 2,000", one_item >= 2000,
         _bound_hot(usage, hot_rows.get("usage"), "the report's insert and its add to a share of the counter", load["usage_spread"],
                    hot_rows.get("usage_async"), _floor_rate(report_floor, "a report", 2000))),
        ("new devices/s into one seat item", f"{new_0:,.0f} at 0 seats taken, {new_40k:,.0f} at 40,000",
         ">= 1,000, flat in the number of seats", min(new_0, new_40k) >= 1000 and new_40k >= 0.8 * new_0,
         "at 0 seats: " + _bound_hot(load["new_0"], hot_rows.get("seat"), "the seat take and device insert", None,
                                   hot_rows.get("seat_async"), _floor_rate(new_floor, "a new device", 1000))
         + "; at 40,000: " + _bound_hot(load["new_40k"], None, "")),
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
    lines = ["| what | this run | goal | status | what bounds it (this run's profile) |", "|---|---|---|---|---|"]
    lines += [
        f"| {what} | {figure} | {goal} | {_ok(ok)} | {rest[0] if rest else ''} |"
        for what, figure, goal, ok, *rest in rows
    ]
    return "\n".join(lines)


def pages_quiet_line(quiet: dict) -> str:
    """How quiet the machine was for the page timings: the wait before them (``pages.settle``)
    and the CPU of their own window, by process group (``pages.time_pages``)."""
    settle, window = quiet["settle"], quiet["cpu"]
    vacuumed = settle["autovacuum"]
    what = (
        f" (autovacuum meanwhile: {', '.join(v.removeprefix('autovacuum: ') for v in vacuumed[:6])}"
        + (f" and {len(vacuumed) - 6} more)" if len(vacuumed) > 6 else ")")
        if vacuumed
        else " (no autovacuum running)"
    )
    seconds = window["seconds"]
    groups = ", ".join(f"{name} {seconds.get(name, 0.0):.1f}" for name in ("web", "postgres", "client", "other"))
    state = "quiet" if settle["quiet"] else f"not quiet after {settle['waited_s']:.0f} s: timed anyway"
    return (
        f"The pages were timed once the machine was quiet (no autovacuum worker, CPUs at most "
        f"{QUIET_BUSY:.0%} busy over {QUIET_WINDOW_S:.0f} s): after the webhook runs the database was vacuumed "
        f"and analyzed (what autovacuum does after the load's writes, {settle.get('vacuum_s', 0.0):.0f} s of the "
        f"{settle['waited_s']:.0f} s it waited){what}, {state}. During the page timings ({window['wall_s']:.0f} s, one request at a "
        f"time) the CPUs were {window['utilization']:.0%} busy; CPU seconds: {groups} "
        "(web = gunicorn, client = this command, other = anything else)."
    )


def _ms(v: float) -> str:
    return f"{v:.2f}"


def bounds(plan: dict, load: dict, hot_rows: dict | None) -> str:
    """The table of what bounds each load run, and the hot rows alone."""
    lines = [
        "What bounds each load run: CPU seconds each process group used in the run's measured window "
        "(/proc/<pid>/stat utime + stime of the process trees, reaped children included; other = /proc/stat busy "
        "minus the groups: other sessions, this command, the kernel's softirq), per request answered; machine "
        f"busy = busy / (cores x wall), CPU-bound from {CPU_BOUND:.0%}; the ceiling is cores / CPU per request of "
        "web + PostgreSQL + load generator (what this machine could answer with nothing else running), and "
        "without the load generator (on a host of its own); Little's law for the closed loop (mean latency = "
        "connections / throughput) beside the measured mean; what the bench database's active backends waited "
        "on, pg_stat_activity sampled every 20 ms from a connection of its own (CPU = no wait event):",
        "",
        "| run | req/s | CPU ms/request: web / PostgreSQL / load gen / other | busy | ceiling req/s (server only) "
        "| Little: N/X vs measured mean ms | backends active (mean), waits | verdict |",
        "|---|---:|---|---:|---:|---|---|---|",
    ]
    runs = [(label, load[name]) for name, label in SCENARIOS]
    ping = _pings(load)
    if ping:
        runs.insert(0, (f"GET /healthz/ping, the trivial endpoint ({ping['runs']} runs together)", ping))
    for label, r in runs:
        c = _cpu(r)
        if not c:
            continue
        w = r.get("waits")
        if w and w["samples"]:
            top = ", ".join(f"{k} {v:.0%}" for k, v in list(w["shares"].items())[:4])
            waits_text = f"{w['mean_active']:.1f}; Lock {w['lock']:.0%} ({top}; {w['samples']} samples)"
        else:
            waits_text = "-"
        little = plan["concurrency"] / r["rps"] * 1000 if r.get("rps") else float("nan")
        lines.append(
            f"| {label} | {r['rps']:,.0f} | {_ms(c['web'])} / {_ms(c['db'])} / {_ms(c['gen'])} / {_ms(c['other'])} "
            f"| {c['busy']:.0%} | {c['cores'] / c['bench'] * 1000:,.0f} ({c['cores'] / c['server'] * 1000:,.0f}) "
            f"| {little:,.1f} vs {r.get('mean_ms', float('nan')):,.1f} | {waits_text} | {verdict(c['busy'], _lock(r), c['ours'])} |"
        )
    if hot_rows:
        lines += [
            "",
            "One hot row alone: pgbench against the bench database, the SQL captured from real requests in-process "
            "(`client/tools/bench/hotrow.py`: from the first write to the commit, the report id and device uuid "
            "fresh each transaction), no web server running; its tps is the row's ceiling on this machine:",
            "",
            "| transaction | clients x s | tps | CPU allows tx/s | mean latency ms (Little) "
            "| CPU ms/tx: PostgreSQL / pgbench / other | busy | backends active (mean), waits | verdict |",
            "|---|---:|---:|---:|---|---|---:|---|---|",
        ]
        labels = {"usage": "a usage report into one scan item: the report insert (with counts and device day), "
                  "the add to the device's share of the counter, COMMIT", "seat": "a new device on one seat item: the seat counter's "
                  "conditional UPDATE, the device insert, its decision, COMMIT"}  # fmt: skip
        for name in list(labels):
            labels[f"{name}_async"] = "the same, `SET LOCAL synchronous_commit = off` (no wait for the WAL flush)"
        for name, r in hot_rows.items():
            a, w = _alone(r), r["waits"]
            top = ", ".join(f"{k} {v:.0%}" for k, v in list(w["shares"].items())[:4])
            waits_text = f"{w['mean_active']:.1f}; Lock {w['lock']:.0%} ({top})" if w["samples"] else "-"
            lines.append(
                f"| {labels.get(name, name)} | {r['clients']} x {r['seconds']:g} | {r['tps']:,.0f} | {a['ceiling']:,.0f} "
                f"| {r['latency_ms']:.1f} ({r['clients'] / r['tps'] * 1000:.1f}) "
                f"| {_ms(a['db'])} / {_ms(a['gen'])} / {_ms(a['other'])} "
                f"| {a['busy']:.0%} | {waits_text} | {verdict(a['busy'], w['lock'], a['ours'])} |"
            )
    return "\n".join(lines)


def table(
    plan, load, hot, pages, memory, invariants, *, server: dict, generate_s: float, rollup_s: float,
    hot_rows: dict | None = None, pages_quiet: dict | None = None,
) -> str:  # fmt: skip
    quick = plan["devices"] < 100_000
    lines = [
        f"Run {timezone.now():%Y-%m-%d %H:%M} UTC{' (--quick)' if quick else ''}. Machine: {common.machine()}. "
        f"1-minute load average {load['loadavg_start']:.1f} when the load started, {load['loadavg_end']:.1f} when "
        "it ended (anything above about 1 on this machine is other work competing for its CPUs).",
        "",
        summary(plan, load, hot, pages, memory, hot_rows),
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
    wide = load.get("wide")
    if wide:
        ping, usage = wide["ping"], wide["usage"]
        lines += ["", f"At the issue's {wide['concurrency']} connections, after the runs above (load average "
                  f"{wide['loadavg']:.1f}): GET /healthz/ping {ping['rps']:,.0f} req/s, p50 {ping['p50_ms']:.1f} / p99 "
                  f"{ping['p99_ms']:.1f} ms; POST /api/v1/usage into the one scan item {usage['rps']:,.0f} req/s, p50 "
                  f"{usage['p50_ms']:.1f} / p99 {usage['p99_ms']:.1f} ms (mean {usage.get('mean_ms', float('nan')):.1f} "
                  f"ms, Little's law {wide['concurrency'] / usage['rps'] * 1000:.1f})."]  # fmt: skip
    lines += ["", bounds(plan, load, hot_rows)]
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
    if pages_quiet:
        lines += ["", pages_quiet_line(pages_quiet)]
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
    "What bounds the API figures is measured, not argued: the last column of the first table and the two "
    "tables after the load table come from this run's profile (`client/tools/bench/cpu.py`: CPU per request "
    "per process group from /proc over each measured window; `waits.py`: pg_stat_activity sampled every "
    "20 ms; `hotrow.py`: pgbench replaying SQL captured from real requests). A run is CPU-bound when the "
    "machine is busy: its throughput is then cores / CPU per request, whatever the row locks. A report's and "
    "a new device's floor is what the request would cost with every overhead at the trivial endpoint's: "
    "HTTP and the middleware as the trivial endpoint's web CPU, the request's own in-process work above a "
    "do-nothing POST and its writes alone in pgbench (both as the code does them now), the load generator's "
    "share; beside the rate that allows, what each goal leaves for the request's own work and writes. The "
    "trivial endpoint and the hot item's reports run once more at the issue's 32 connections, where its p99 "
    "goal was set. An "
    "authorization of a new device on a seat item takes its seat with one conditional UPDATE of the item's "
    "seat counter row (devices.seats), held to the commit over the device insert and its decision; a usage "
    "report on a scan or page item ends with a conditional UPDATE of its device's share of the item's "
    "counter (devices.quota: 16 shares, each with headroom below the limit), held from that last statement "
    "to the commit (its WAL flush included: the pgbench rows without it say what that costs). Reports of "
    "one item on different shares run in parallel; near the limit they go the exact way, one at a time; "
    "requests for different items run in parallel (the spread run). The portal pages are timed one request at a time after the load has "
    "stopped and the machine is quiet again (the line under their table says how long that took and how busy "
    'the CPUs were meanwhile). See "Hot path" below for the design.'
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

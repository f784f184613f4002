"""python manage.py bench_api: the device API and the portal under load, on PostgreSQL with the
production server (gunicorn) on 127.0.0.1 (``make bench``; docs/benchmarks.md, section "API").

1. Creates a database of its own (``<DATABASE name>_bench``, dropped afterwards unless --keep)
   and migrates it; generates 100,000 devices and 1,000,000 usage reports on one project with SQL.
2. Starts gunicorn with gunicorn.conf.py and the production settings (plain HTTP: TLS is the
   load balancer's), Redis db 5 as cache when it answers.
3. Runs the load generator (``python -m client.tools.loadgen``, another process) at a fixed
   concurrency: /healthz/ping (the baseline: same server, middleware and JSON, no database),
   then authorize, then usage; throughput and p50/p99 latency, each also as a ratio to the
   baseline.
4. Times the portal pages of the big project, logged in as its owner.
5. Checks the invariants (no item over its seats; every report sent counted once) and prints the
   table; --write-doc puts it in docs/benchmarks.md, section "API" (other sections are kept)."""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

ROOT = Path(settings.BASE_DIR)
DOC = ROOT / "docs" / "benchmarks.md"
REDIS_BENCH_URL = "redis://127.0.0.1:6379/5"
OWNER_PASSWORD = "bench-owner-" + secrets.token_urlsafe(8)
SESSION_PASSWORD = "bench-session-" + secrets.token_urlsafe(8)  # the protected project's (SPEC 6)

FULL = {"devices": 100_000, "reports": 1_000_000, "duration": 15.0, "warmup": 2.0, "concurrency": 16,
        "seats": 1_000, "authorize_pool": 1_200, "usage_devices": 64, "page_repeats": 5}  # fmt: skip
QUICK = {"devices": 2_000, "reports": 20_000, "duration": 3.0, "warmup": 0.5, "concurrency": 8,
         "seats": 100, "authorize_pool": 120, "usage_devices": 16, "page_repeats": 2}  # fmt: skip


def database_url(db: dict, name: str) -> str:
    auth = quote(db.get("USER") or "postgres", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{auth}@{host}:{port}/{name}"


def free_port(preferred: int) -> int:
    for port in range(preferred, preferred + 50):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise CommandError(f"no free port from {preferred}")


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


class Command(BaseCommand):
    help = "Benchmark the device API and the portal on PostgreSQL with gunicorn (docs/benchmarks.md, API)."

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="a small smoke run (seconds, not minutes)")
        parser.add_argument("--concurrency", type=int, help="load generator threads")
        parser.add_argument("--duration", type=float, help="seconds measured per scenario")
        parser.add_argument("--devices", type=int, help="devices of the portal project")
        parser.add_argument("--reports", type=int, help="usage reports of the portal project")
        parser.add_argument("--port", type=int, default=8600, help="gunicorn's port on 127.0.0.1 (first free from)")
        parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
        parser.add_argument("--write-doc", action="store_true", help="write the table into docs/benchmarks.md")
        parser.add_argument("--inner", action="store_true", help="(internal) run inside the bench database")

    def handle(self, *args, **opts):
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
        if connection.vendor != "postgresql":
            raise CommandError(
                "bench_api needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/dls_ops "
                "python manage.py bench_api"
            )
        if opts["inner"]:
            return self.inner(opts)
        return self.outer(opts)

    # -- outer: a database of its own --------------------------------------------------------------

    def outer(self, opts):
        db = settings.DATABASES["default"]
        name = f"{db['NAME']}_bench"
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise CommandError(f"unexpected database name {name!r}")
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
        env["DATABASE_URL"] = database_url(db, name)
        argv = [sys.executable, str(ROOT / "manage.py"), "bench_api", "--inner"]
        for flag in ("quick", "write_doc"):
            if opts[flag]:
                argv.append("--" + flag.replace("_", "-"))
        for option in ("concurrency", "duration", "devices", "reports", "port"):
            if opts[option] is not None:
                argv += [f"--{option}", str(opts[option])]
        try:
            result = subprocess.run(argv, env=env, cwd=ROOT)
        finally:
            if not opts["keep"]:
                connection.close()
                with connection.cursor() as cursor:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if result.returncode:
            raise CommandError(f"the benchmark failed (exit {result.returncode})")

    # -- inner ---------------------------------------------------------------------------------------

    def inner(self, opts):
        plan = dict(QUICK if opts["quick"] else FULL)
        for option in ("concurrency", "duration", "devices", "reports"):
            if opts[option] is not None:
                plan[option] = opts[option]
        self.say(f"bench_api: database {connection.settings_dict['NAME']}, plan {json.dumps(plan)}")
        t0 = time.monotonic()
        call_command("migrate", verbosity=0, interactive=False)
        self.say(f"migrated in {time.monotonic() - t0:.1f} s")
        now = timezone.now()
        world = self.create_world(now, plan)
        t0 = time.monotonic()
        self.generate(world, plan, now)
        generate_s = time.monotonic() - t0
        self.say(f"generated {plan['devices']:,} devices and {plan['reports']:,} reports in {generate_s:.1f} s")
        t0 = time.monotonic()
        from usage.jobs import rollup_usage

        rollup = rollup_usage(now=timezone.now())
        rollup_s = time.monotonic() - t0
        self.say(f"rollup_usage over them in {rollup_s:.1f} s: {rollup}")

        from client.tools import bench_webhooks, hotpath

        hotpath.fill_seats(world["hot_seats_full"], 40_000, now)
        self.say("in-process: statements and CPU per request (authorize at 0 and 40,000 seats, usage)")
        self.hot = hotpath.measure(
            seats_empty=world["hot_seats_empty"], seats_full=world["hot_seats_full"], scans=world["hot_scans"],
            seats_protected=world["hot_seats_protected"], session_password=SESSION_PASSWORD,
            now=timezone.now(), n=100 if opts["quick"] else 400,
        )  # fmt: skip
        port = free_port(opts["port"])
        with tempfile.TemporaryDirectory(prefix="dls-bench-") as tmp:
            server = self.start_gunicorn(port, Path(tmp))
            try:
                base = f"http://127.0.0.1:{port}"
                self.loadavg = os.getloadavg()[0]  # other work on the machine skews the figures
                load = self.load(base, world, plan)
                pages = self.pages(base, world, plan)
                bench_webhooks.run(base, plan, quick=opts["quick"], write_doc_too=opts["write_doc"], say=self.say, out=self.stdout)  # fmt: skip
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
        invariants = self.invariants(world, load)
        table = self.table(plan, load, pages, invariants, generate_s=generate_s, rollup_s=rollup_s, port=port)
        self.stdout.write(table)
        if opts["write_doc"]:
            self.write_doc(table)
            self.say(f"wrote {DOC.relative_to(ROOT)}, section API")
        if not all(ok for ok, _ in invariants.values()):
            raise CommandError("an invariant does not hold (see the table)")

    def say(self, text: str) -> None:
        self.stderr.write(text)

    # -- data ----------------------------------------------------------------------------------------

    def create_world(self, now, plan) -> dict:
        from django.contrib.auth import get_user_model

        from licenses.models import License, LicenseItem, Membership, Organization, Project

        with transaction.atomic():
            org = Organization.objects.create(id="999001", name="Bench Corp")
            lic = License.objects.create(
                license_id="L-BENCH-1", organization=org, starts_at=now - timedelta(days=60),
                expires_at=now + timedelta(days=300),
            )  # fmt: skip
            api_project = Project.objects.create(organization=org, name="bench-api")
            portal_project = Project.objects.create(organization=org, name="bench-portal")

            def item(project, option, **fields):
                return LicenseItem.objects.create(license=lic, project=project, product="dbr", option=option, **fields)

            world = {
                "org": org,
                "api_project": api_project,
                "portal_project": portal_project,
                "api_seats": item(api_project, "per_client_device", edition="javascript", quantity=plan["seats"]),
                "api_scans": item(api_project, "per_barcode_scan", edition="mobile", quantity=10**12 // 10**3),
                "portal_seats": item(portal_project, "per_client_device", edition="javascript", quantity=10**6),
                "portal_scans": item(portal_project, "per_barcode_scan", edition="mobile", quantity=10**9),
            }
            world.update(
                {
                    name: item(Project.objects.create(organization=org, name=f"bench-{name}"), option, quantity=q)
                    for name, option, q in (
                        ("hot_seats_empty", "per_client_device", 10**6),
                        ("hot_seats_full", "per_client_device", 10**6),
                        ("hot_seats_protected", "per_client_device", 10**6),
                        ("hot_scans", "per_barcode_scan", 2 * 10**9),
                    )
                }
            )
            from licenses.protection import set_protection

            set_protection(
                world["hot_seats_protected"].project, actor="bench", now=now, session_password=SESSION_PASSWORD
            )
            owner = get_user_model().objects.create_user(username="bench-owner", password=OWNER_PASSWORD)
            Membership.objects.create(user=owner, organization=org, role=Membership.OWNER)
        return world

    def generate(self, world, plan, now) -> None:
        """100,000 devices (half web seats, half mobile scanners, a tenth expired) and their
        1,000,000 reports spread over the last 29 days, with their usage counts, in SQL."""
        from devices.models import Device, QuotaCounter
        from usage.models import DeviceUsageDay, UsageCount, UsageReport

        per_device = max(1, plan["reports"] // plan["devices"])
        params = {
            "project": world["portal_project"].pk,
            "web": world["portal_seats"].pk,
            "scan": world["portal_scans"].pk,
            "n": plan["devices"],
            "per_device": per_device,
            "now": now,
        }
        device, report, count = Device._meta.db_table, UsageReport._meta.db_table, UsageCount._meta.db_table
        day = DeviceUsageDay._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {device} (project_id, device_uuid, item_id, client_type, origin, platform, device_name,
                    sdk_version, state, first_authorized_at, authorized_at, last_seen_at, first_used_at,
                    active_until, ended_at, offline)
                SELECT %(project)s, 'bench-' || lpad(g::text, 7, '0'),
                    CASE WHEN g %% 2 = 0 THEN %(web)s ELSE %(scan)s END,
                    CASE WHEN g %% 2 = 0 THEN 'web' ELSE 'mobile' END,
                    CASE WHEN g %% 2 = 0 THEN 'https://app' || (g %% 50) || '.bench.example' ELSE '' END,
                    'linux', 'Bench device ' || g, '10.4',
                    CASE WHEN g %% 10 = 0 THEN 'expired' ELSE 'active' END,
                    %(now)s - interval '29 days', %(now)s - (g %% 40000) * interval '1 minute',
                    %(now)s - (g %% 40000) * interval '1 minute', %(now)s - interval '29 days',
                    CASE WHEN g %% 10 = 0 THEN %(now)s - interval '1 day' ELSE %(now)s + interval '300 days' END,
                    CASE WHEN g %% 10 = 0 THEN %(now)s - interval '1 day' END, false
                FROM generate_series(1, %(n)s) AS g
                """,
                params,
            )
            cursor.execute(
                f"""
                INSERT INTO {report} (device_id, report_id, item_id, slot_start, body_hash, counted, allowed,
                    response, received_at)
                SELECT d.id, 'r' || r, d.item_id, s.slot, md5(d.id || '/' || r), jsonb_build_object('barcode_scans',
                    (d.id + r) %% 5 + 1), true, '{{}}'::jsonb, s.slot + interval '30 seconds'
                FROM {device} d CROSS JOIN generate_series(1, %(per_device)s) AS r
                CROSS JOIN LATERAL (SELECT to_timestamp((floor(extract(epoch FROM %(now)s::timestamptz) / 180)
                    - 1 - (d.id * 7 + r * 977) %% 13900) * 180) AS slot) AS s
                WHERE d.project_id = %(project)s
                """,
                params,
            )
            cursor.execute(
                f"""
                INSERT INTO {count} (report_id, item_id, slot_start, metric, count)
                SELECT r.id, r.item_id, r.slot_start, 'barcode_scans', (r.counted ->> 'barcode_scans')::int
                FROM {report} r JOIN {device} d ON d.id = r.device_id WHERE d.project_id = %(project)s
                """,
                params,
            )
            cursor.execute(
                f"""
                INSERT INTO {day} (device_id, item_id, day, metric, count)
                SELECT r.device_id, c.item_id, (c.slot_start AT TIME ZONE 'UTC')::date, c.metric, SUM(c.count)
                FROM {count} c JOIN {report} r ON r.id = c.report_id JOIN {device} d ON d.id = r.device_id
                WHERE d.project_id = %(project)s
                GROUP BY r.device_id, c.item_id, (c.slot_start AT TIME ZONE 'UTC')::date, c.metric
                """,
                params,
            )  # the per-device days the API keeps with each report (usage.hot_sql)
            cursor.execute(f"ANALYZE {device}; ANALYZE {report}; ANALYZE {count}; ANALYZE {day}")
        used = UsageCount.objects.filter(item=world["portal_scans"]).values_list("count", flat=True)
        QuotaCounter.objects.create(item=world["portal_scans"], metric="barcode_scans", used=sum(used))

    # -- the server ----------------------------------------------------------------------------------

    def start_gunicorn(self, port: int, tmp: Path) -> subprocess.Popen:
        from devices.signing import generate_private_key_text

        key_file = tmp / "signing-key.txt"
        key_file.write_text(generate_private_key_text() + "\n")
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
        env.update(
            DJANGO_ENV="production",
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS="127.0.0.1",
            BASE_URL=f"http://127.0.0.1:{port}",
            SIGNING_KEY_FILE=str(key_file),
            DATABASE_URL=database_url(connection.settings_dict, connection.settings_dict["NAME"]),
            # Plain HTTP on loopback: TLS, and so the redirect and secure cookies, belong to the proxy.
            SECURE_SSL_REDIRECT="false",
            SESSION_COOKIE_SECURE="false",
            CSRF_COOKIE_SECURE="false",
            API_RATE_LIMIT="1000000/m",  # counted (the cost is measured) but never reached
            API_RATE_LIMIT_ADDRESS="1000000/m",
            GUNICORN_BIND=f"127.0.0.1:{port}",
            LOG_LEVEL="WARNING",
            STATIC_ROOT=str(tmp / "static"),
            EMAIL_URL="dummymail://",  # production refuses the console backend; the bench sends no mail
        )
        if redis_up():
            env["REDIS_URL"] = REDIS_BENCH_URL
        else:
            env.pop("REDIS_URL", None)
        collect = subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, capture_output=True
        )
        if collect.returncode:
            raise CommandError(f"collectstatic failed: {collect.stderr.decode()[-500:]}")
        self.server_env = {k: env[k] for k in ("GUNICORN_BIND",)} | {"redis": "REDIS_URL" in env}
        log = open(tmp / "gunicorn.log", "wb")  # noqa: SIM115 (closed with the directory)
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py", "dls_admin.wsgi"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 180  # workers import Django one after the other on a busy machine
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError(f"gunicorn exited: {(tmp / 'gunicorn.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            server.kill()
            raise CommandError("gunicorn did not answer /healthz within 180 s")
        self.gunicorn_workers = int(os.environ.get("GUNICORN_WORKERS", os.cpu_count() * 2 + 1))
        self.gunicorn_threads = int(os.environ.get("GUNICORN_THREADS", 4))
        self.say(f"gunicorn on 127.0.0.1:{port} ({self.gunicorn_workers} workers x {self.gunicorn_threads} threads)")
        return server

    # -- load ----------------------------------------------------------------------------------------

    def load(self, base: str, world: dict, plan: dict) -> dict:
        run = secrets.token_hex(4)
        loadgen_plan = {
            "base_url": base,
            "license_key": world["api_project"].license_key,
            "run": run,
            "scenarios": ["ping", "authorize", "usage"],
            "concurrency": plan["concurrency"],
            "duration": plan["duration"],
            "warmup": plan["warmup"],
            "authorize_devices": [f"auth-{run}-{i:05d}" for i in range(plan["authorize_pool"])],
            "usage_devices": [f"use-{run}-{i:04d}" for i in range(plan["usage_devices"])],
            "duplicate_fraction": 0.05,
        }
        self.say(f"load: {plan['concurrency']} threads, {plan['duration']:g} s per scenario (ping, authorize, usage)")
        result = subprocess.run(
            [sys.executable, "-m", "client.tools.loadgen"], cwd=ROOT, input=json.dumps(loadgen_plan).encode(),
            capture_output=True, timeout=plan["duration"] * 10 + 600,
        )  # fmt: skip
        if result.returncode:
            raise CommandError(f"the load generator failed: {result.stderr.decode()[-2000:]}")
        return json.loads(result.stdout)

    def pages(self, base: str, world: dict, plan: dict) -> list[dict]:
        from devices.models import Device

        project = world["portal_project"].pk
        some_device = Device.objects.filter(project_id=project).order_by("id")[plan["devices"] // 2].pk
        urls = [
            ("licenses (home)", "/"),
            ("project", f"/projects/{project}/"),
            ("devices, page 1", f"/projects/{project}/devices/"),
            ("devices, page 1000", f"/projects/{project}/devices/?page=1000"),
            ("devices, search", f"/projects/{project}/devices/?q=bench-00777"),
            ("devices, expired", f"/projects/{project}/devices/?state=expired"),
            ("device detail", f"/devices/{some_device}/"),
            ("statistics", f"/projects/{project}/statistics/"),
            ("devices.csv (all)", f"/projects/{project}/export/devices.csv"),
        ]
        results = []
        with httpx.Client(base_url=base, timeout=300, follow_redirects=False) as client:
            login = client.get("/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
            answer = client.post(
                "/accounts/login/",
                data={"csrfmiddlewaretoken": token, "username": "bench-owner", "password": OWNER_PASSWORD},
                headers={"Referer": f"{base}/accounts/login/"},
            )
            if answer.status_code != 302:
                raise CommandError(f"portal login failed: {answer.status_code}")
            for label, url in urls:
                timings, status, size = [], None, 0
                for _ in range(plan["page_repeats"]):
                    t0 = time.perf_counter()
                    response = client.get(url)
                    timings.append((time.perf_counter() - t0) * 1000)
                    status, size = response.status_code, len(response.content)
                results.append(
                    {
                        "page": label,
                        "url": url,
                        "status": status,
                        "bytes": size,
                        "median_ms": statistics.median(timings),
                        "max_ms": max(timings),
                    }  # fmt: skip
                )
        return results

    # -- invariants ----------------------------------------------------------------------------------

    def invariants(self, world: dict, load: dict) -> dict:
        from django.db.models import Sum

        from devices.models import Device, QuotaCounter
        from devices.verdicts import seat_counts
        from usage.models import UsageCount, UsageReport

        now = timezone.now()
        checks = {}
        over = []
        for key in ("api_seats", "portal_seats"):
            item = world[key]
            item.refresh_from_db()
            counts = seat_counts(item, now=now)
            if counts["active"] > counts["ceiling"]:
                over.append(f"item {item.pk}: {counts}")
        seats = seat_counts(world["api_seats"], now=now)
        checks["no item over its seats"] = (
            not over,
            f"authorize item: {seats['active']} active of ceiling {seats['ceiling']} (quantity {seats['quantity']})"
            + (f"; OVER: {over}" if over else ""),
        )
        usage = load["usage"]
        devices = Device.objects.filter(project=world["api_project"], device_uuid__startswith="use-")
        reports = UsageReport.objects.filter(device__in=devices).count()
        scans = (
            UsageCount.objects.filter(report__device__in=devices, metric="barcode_scans").aggregate(n=Sum("count"))["n"]
            or 0
        )
        counter = QuotaCounter.objects.filter(item=world["api_scans"], metric="barcode_scans").values_list(
            "used", flat=True
        )
        counter = counter[0] if counter else 0
        once = (
            reports == usage["accepted"]
            and scans == usage["sent_scans"] == usage["counted_scans"] == counter
            and usage["errors"] == 0
        )
        checks["every report sent counted once"] = (
            once,
            f"{usage['accepted']:,} reports accepted, {reports:,} stored; scans sent {usage['sent_scans']:,}, "
            f"answered counted {usage['counted_scans']:,}, in the database {scans:,}, quota counter {counter:,}; "
            f"{usage['duplicates']:,} retries answered duplicate",
        )
        return checks

    # -- output --------------------------------------------------------------------------------------

    def machine(self) -> str:
        mem_kb = 0
        try:
            mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        except (OSError, AttributeError):
            pass
        cpu = ""
        try:
            cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text()).group(1).strip()
        except (OSError, AttributeError):
            pass
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg = cursor.fetchone()[0]
        return (
            f"{os.cpu_count()} CPUs ({cpu or platform.machine()}), {mem_kb / 1024 / 1024:.1f} GiB memory, "
            f"PostgreSQL {pg}, Python {platform.python_version()}, {platform.system()} {platform.release()}"
        )

    def table(self, plan, load, pages, invariants, *, generate_s, rollup_s, port) -> str:
        ping = load["ping"]
        lines = [
            f"Run {timezone.now():%Y-%m-%d %H:%M} UTC{' (--quick)' if plan['devices'] < 100_000 else ''}. "
            f"Machine: {self.machine()}.",
            "",
            f"Server: gunicorn on 127.0.0.1, {self.gunicorn_workers} workers x {self.gunicorn_threads} threads, "
            f"production settings over HTTP, cache and rate-limit counters in "
            f"{'Redis' if self.server_env['redis'] else 'local memory'}. Load: `python -m client.tools.loadgen` in "
            f"another process, {plan['concurrency']} threads with keep-alive connections, {plan['duration']:g} s "
            f"measured per endpoint after {plan['warmup']:g} s of warm-up. Load generator and server share the "
            f"machine's CPUs; the 1-minute load average when the load started was {self.loadavg:.1f} "
            "(anything above about 1 is other work competing for them).",
            "",
            "| endpoint | requests/s | p50 ms | p99 ms | throughput vs ping | p50 vs ping | p99 vs ping | answers |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, label in (("ping", "GET /healthz/ping (baseline)"), ("authorize", "POST /api/v1/authorize"),
                            ("usage", "POST /api/v1/usage")):  # fmt: skip
            r = load[name]
            answers = ", ".join(f"{k}: {v:,}" for k, v in r["statuses"].items())
            if r["codes"]:
                answers += " (codes " + ", ".join(f"{k}: {v:,}" for k, v in r["codes"].items()) + ")"
            if r["errors"]:
                answers += f", {r['errors']} transport errors"
            lines.append(
                f"| {label} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['rps'] / ping['rps']:.2f} | {r['p50_ms'] / ping['p50_ms']:.1f} | "
                f"{r['p99_ms'] / ping['p99_ms']:.1f} | {answers} |"
            )
        usage_cpu = next(r for r in self.hot if r["what"].startswith("usage"))
        per_report_ms = usage_cpu["web_cpu_ms"] + (usage_cpu["db_cpu_ms"] or 0)
        lines += [
            "",
            "In-process, one request at a time through the whole Django stack (`client/tools/hotpath.py`): "
            "SQL statements per request (BEGIN/COMMIT not counted), CPU of this process (views, ORM, psycopg, "
            "signing) and of its PostgreSQL backend per request, and the sequential rate:",
            "",
            "| request | statements | web CPU ms | PostgreSQL CPU ms | sequential req/s | answers |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in self.hot:
            db = f"{r['db_cpu_ms']:.2f}" if r["db_cpu_ms"] is not None else "n/a"
            answers = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
            lines.append(
                f"| {r['what']} | {r['statements']:.1f} | {r['web_cpu_ms']:.2f} | {db} | {r['rate']:,.0f} | {answers} |"
            )
        lines += [
            "",
            f"Cores for 5,600 reports/s from these figures (web + PostgreSQL CPU per report, "
            f"{per_report_ms:.2f} ms): {5600 * per_report_ms / 1000:.1f}.",
        ]
        lines += [
            "",
            f"Portal pages of one project with {plan['devices']:,} devices and {plan['reports']:,} usage reports "
            f"(generated with SQL in {generate_s:.0f} s; `rollup_usage` over them took {rollup_s:.1f} s), "
            f"logged in as its owner, {plan['page_repeats']} requests each, one at a time:",
            "",
            "| page | status | size | median ms | max ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for p in pages:
            lines.append(
                f"| {p['page']} (`{p['url'].split('?')[0].rstrip('/').rsplit('/', 1)[-1] or '/'}"
                f"{'?' + p['url'].split('?')[1] if '?' in p['url'] else ''}`) | {p['status']} | "
                f"{p['bytes'] / 1024:,.0f} KiB | {p['median_ms']:,.0f} | {p['max_ms']:,.0f} |"
            )
        lines += ["", "Invariants after the load:", ""]
        for name, (ok, detail) in invariants.items():
            lines.append(f"- {'OK' if ok else 'FAILED'}: {name}: {detail}.")
        return "\n".join(lines) + "\n"

    def write_doc(self, table: str) -> None:
        """Replace the "## API" section of docs/benchmarks.md (or add it), keeping the others."""
        section = (
            "## API\n\n"
            "`make bench` (API part: `DATABASE_URL=postgres://... python manage.py bench_api --write-doc`; "
            "`--quick` for a smoke run). The ratios compare each endpoint with a trivial JSON endpoint of "
            "the same app on the same server in the same run, so they carry over to other machines better "
            "than the absolute figures.\n\n" + table + "\n"
            "What bounds the API figures: an authorization of a new device on a seat item takes its seat "
            "with one conditional UPDATE of the item's seat counter row (devices.seats), held to the commit "
            "over the device insert and its decision; a usage report on a scan or page item ends with the "
            "upsert of the item's counter row, held from that last statement to the commit. Requests for "
            "one item are serialized over that tail only; requests for different items run in parallel. "
            "The load here is all on one item of each kind: the worst case, and the case of one large "
            "customer. The portal pages are timed one request at a time after the load has stopped. "
            'See "Hot path" below for the design and what each goal is bounded by.\n'
        )
        text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
        match = re.search(r"^## API\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
        if match:
            text = text[: match.start()] + section + ("\n" if text[match.end() :] else "") + text[match.end() :]
        else:
            text = text.rstrip("\n") + "\n\n" + section
        DOC.write_text(text)

"""python manage.py bench_api: the device API and the portal at fleet scale, on PostgreSQL with the
production server (gunicorn) on 127.0.0.1 (``make bench``; docs/benchmarks.md, section "API").
The work is in ``client/tools/bench/``; this command runs its steps in order:

1. a database of its own (``<DATABASE name>_bench``, dropped afterwards unless --keep), migrated;
   the items of the load and a portal project of 100,000 devices and 1,000,000 usage reports made
   with SQL, then ``rollup_usage`` (``bench.world``);
2. in-process: statements, web and PostgreSQL CPU per request (``client/tools/hotpath.py``);
3. gunicorn (``bench.server``) and the load generator in another process (``bench.load``), each
   run between two runs of the trivial endpoint, with the CPU each process group used in its
   window (``bench.cpu``) and what the database's backends waited on (``bench.waits``); the
   webhook figure (``client/tools/bench_webhooks.py``);
4. once the machine is quiet again (autovacuum done, CPUs idle), every portal page and export of the
   big project, p50/p95, and devices.csv's memory (``bench.pages``);
5. one hot row alone: pgbench replaying the SQL of a captured report and seat take (``bench.hotrow``);
6. the invariants (``bench.invariants``), the issue's table, what bounds each figure and the
   detail (``bench.report``);
   --write-doc puts them in docs/benchmarks.md, section "API" (other sections are kept)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from client.tools.bench import common, hotrow, invariants, load, pages, report, server, world

FULL = {"devices": 100_000, "reports": 1_000_000, "duration": 15.0, "warmup": 2.0, "concurrency": 16,
        "seats": 1_000, "authorize_pool": 1_200, "usage_devices": 64, "page_repeats": 10, "hot_n": 400, "wide_concurrency": 32}  # fmt: skip
QUICK = {"devices": 2_000, "reports": 20_000, "duration": 2.0, "warmup": 0.5, "concurrency": 8,
         "seats": 100, "authorize_pool": 120, "usage_devices": 16, "page_repeats": 3, "hot_n": 60, "wide_concurrency": 32}  # fmt: skip


class Command(BaseCommand):
    help = "Benchmark the device API and the portal on PostgreSQL with gunicorn (docs/benchmarks.md, API)."

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="a small smoke run (seconds, not minutes)")
        parser.add_argument("--concurrency", type=int, help="load generator threads")
        parser.add_argument("--duration", type=float, help="seconds measured per run")
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

    def say(self, text: str) -> None:
        self.stderr.write(text)

    def outer(self, opts):
        """Runs the benchmark in a database of its own, created and dropped here."""
        db = settings.DATABASES["default"]
        name = f"{db['NAME']}_bench"
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise CommandError(f"unexpected database name {name!r}")
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
        env["DATABASE_URL"] = common.database_url(db, name)
        argv = [sys.executable, str(common.ROOT / "manage.py"), "bench_api", "--inner"]
        for flag in ("quick", "write_doc"):
            if opts[flag]:
                argv.append("--" + flag.replace("_", "-"))
        for option in ("concurrency", "duration", "devices", "reports", "port"):
            if opts[option] is not None:
                argv += [f"--{option}", str(opts[option])]
        try:
            result = subprocess.run(argv, env=env, cwd=common.ROOT)
        finally:
            if not opts["keep"]:
                connection.close()
                with connection.cursor() as cursor:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if result.returncode:
            raise CommandError(f"the benchmark failed (exit {result.returncode})")

    def inner(self, opts):
        from client.tools import bench_webhooks, hotpath
        from usage.jobs import rollup_usage

        plan = dict(QUICK if opts["quick"] else FULL)
        for option in ("concurrency", "duration", "devices", "reports"):
            if opts[option] is not None:
                plan[option] = opts[option]
        plan["pgbench_s"] = min(10.0, float(plan["duration"]))  # each hot row alone, as long as a load run
        self.say(f"bench_api: database {connection.settings_dict['NAME']}, plan {json.dumps(plan)}")
        t0 = time.monotonic()
        call_command("migrate", verbosity=0, interactive=False)
        self.say(f"migrated in {time.monotonic() - t0:.1f} s")
        now = timezone.now()
        data = world.create_world(now, plan)
        t0 = time.monotonic()
        world.generate(data, plan, now)
        generate_s = time.monotonic() - t0
        self.say(f"generated {plan['devices']:,} devices and {plan['reports']:,} reports in {generate_s:.1f} s")
        t0 = time.monotonic()
        rollup = rollup_usage(now=timezone.now())
        rollup_s = time.monotonic() - t0
        self.say(f"rollup_usage over them in {rollup_s:.1f} s: {rollup}")

        hotpath.fill_seats(data["hot_seats_full"], 40_000, now)
        hotpath.fill_seats(data["hot_seats_ceiling"], data["hot_seats_ceiling"].seat_ceiling, now)
        self.say("in-process: statements and CPU per request (authorize at 0 and 40,000 seats, usage)")
        hot = hotpath.measure(
            seats_empty=data["hot_seats_empty"], seats_full=data["hot_seats_full"], scans=data["hot_scans"],
            seats_protected=data["hot_seats_protected"], session_password=world.SESSION_PASSWORD,
            seats_at_ceiling=data["hot_seats_ceiling"],
            now=timezone.now(), n=int(plan["hot_n"]),
        )  # fmt: skip
        port = common.free_port(opts["port"])
        conninfo = common.database_url(connection.settings_dict, connection.settings_dict["NAME"])
        with tempfile.TemporaryDirectory(prefix="dls-bench-") as tmp:
            gunicorn, server_info = server.start_gunicorn(port, Path(tmp), self.say)
            try:
                base = f"http://127.0.0.1:{port}"
                loaded = load.run(base, data, plan, self.say, gunicorn_pid=gunicorn.pid, conninfo=conninfo)
                bench_webhooks.run(base, plan, quick=opts["quick"], write_doc_too=opts["write_doc"], say=self.say, out=self.stdout)  # fmt: skip
                self.say("portal pages and exports, one request at a time, once the machine is quiet:")
                settled = pages.settle(conninfo, self.say)
                timed, pages_cpu = pages.time_pages(base, data, plan, self.say, gunicorn_pid=gunicorn.pid)
            finally:
                server.stop(gunicorn)
        memory = pages.csv_memory(data["portal_project"])
        checks = invariants.check(data, loaded)
        self.say(f"one hot row alone: pgbench, {plan['concurrency']} clients, {plan['pgbench_s']:g} s each")
        rows = hotrow.measure(data, plan, conninfo, self.say)
        text = report.table(
            plan, loaded, hot, timed, memory, checks, server=server_info, generate_s=generate_s, rollup_s=rollup_s,
            hot_rows=rows, pages_quiet={"settle": settled, "cpu": pages_cpu},
        )  # fmt: skip
        self.stdout.write(text)
        if opts["write_doc"]:
            report.write_doc(text)
            self.say(f"wrote {common.DOC.relative_to(common.ROOT)}, section API")
        if not all(ok for ok, _ in checks.values()):
            raise CommandError("an invariant does not hold (see the table)")

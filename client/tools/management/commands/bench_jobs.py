"""``python manage.py bench_jobs [--scale 1.0]``: time each scheduled job against the bare SQL
statement doing the same work, on the same data, in the same run (``make bench``).

PostgreSQL only, in a database of its own (its name must contain ``bench``, or start with
``test_`` for the test suite), because it truncates the device and usage tables:

    createdb -h 127.0.0.1 -U postgres dls_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/dls_bench
    python manage.py migrate && python manage.py bench_jobs

At scale 1 it builds 1,000,000 devices (100,000 of them idle past ``active_until``),
1,000,000 usage reports each with one count and one slot-device row (10 concurrent items x
1,000 slots x 100 devices; the oldest 10 % past retention) and 100,000 dedup memory rows, with
``generate_series`` INSERTs. Each job then runs against a warm cache, the data is restored, the
bare statement runs, the data is restored again. Peak memory is the job's Python heap peak
(tracemalloc) and the growth of the process's maximum resident set (getrusage). The work is in
``client/tools/bench/jobs_data.py``, ``jobs_cases.py`` and ``jobs_run.py``."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone

from client.tools.bench import jobs_data, jobs_run
from client.tools.bench.jobs_cases import cases


class Command(BaseCommand):
    help = "Benchmark the scheduled jobs against bare SQL on PostgreSQL (a dedicated *bench* database)."

    def add_arguments(self, parser):
        parser.add_argument("--scale", type=float, default=1.0, help="fraction of 1,000,000 rows (default 1)")
        parser.add_argument("--rounds", type=int, default=3, help="timed rounds per job; the median is reported")

    def handle(self, *args, scale: float, rounds: int, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "bench_jobs needs PostgreSQL: run it with DATABASE_URL=postgres://postgres@127.0.0.1:5432/dls_bench "
                "(a database of its own; see docs/benchmarks.md)"
            )
        name = connection.settings_dict["NAME"]
        if "bench" not in name and not name.startswith("test_"):
            raise CommandError(
                f"bench_jobs truncates device and usage tables: refusing database {name!r} (use dls_bench)"
            )
        if not 0 < scale <= 10:
            raise CommandError("--scale: must be > 0 and <= 10")
        if rounds < 1:
            raise CommandError("--rounds: must be at least 1")
        n = max(
            int(1_000_000 * scale),
            jobs_data.SEAT_ITEMS * 10,
            jobs_data.CONCURRENT_ITEMS * jobs_data.DEVICES_PER_SLOT * 10,
        )
        now = timezone.now().replace(microsecond=0)
        b = jobs_data.JobsBench(
            now=now,
            cutoff=now - timedelta(days=settings.REPORT_RETENTION_DAYS),
            n=n,
            rounds=rounds,
            out=self.stdout.write,
        )
        self.stdout.write(jobs_run.machine(b))
        started = time.perf_counter()
        jobs_data.build(b)
        self.stdout.write(f"data built in {time.perf_counter() - started:.1f} s: {jobs_data.counts()}")
        rows = []
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            for case_name, job, bare, restore, *prepare in cases(b):
                for step in prepare:
                    step()
                rows.append(jobs_run.compare(b, case_name, job, bare, restore))
        self.stdout.write(jobs_run.table(b, rows))
        jobs_data.cleanup()

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
(tracemalloc) and the growth of the process's maximum resident set (getrusage)."""

from __future__ import annotations

import gc
import os
import platform
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.test.utils import override_settings
from django.utils import timezone

from devices.models import Decision, Device, QuotaCounter
from licenses.models import AlertRecipient, License, LicenseItem, Organization, Project
from usage import jobs
from usage.models import (
    AlertSent,
    ConcurrencyRollup,
    JobState,
    ReminderSent,
    SightingMemory,
    SlotDevice,
    UsageCount,
    UsageReport,
    UsageRollup,
)

BENCH_ORG = "BENCH"
TRUNCATE = [
    model._meta.db_table
    for model in (
        UsageCount,
        UsageReport,
        SlotDevice,
        SightingMemory,
        ConcurrencyRollup,
        UsageRollup,
        AlertSent,
        ReminderSent,
        QuotaCounter,
        JobState,
        Decision,
        Device,
    )
]
SEAT_ITEMS = 100
CONCURRENT_ITEMS = 10
DEVICES_PER_SLOT = 100


def sql(statement: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def scalar(statement: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


def fmt(times: list[float]) -> str:
    return "/".join(f"{t:.3f}" for t in times)


def maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


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
        self.rounds = rounds
        self.n = max(int(1_000_000 * scale), SEAT_ITEMS * 10, CONCURRENT_ITEMS * DEVICES_PER_SLOT * 10)
        self.now = timezone.now().replace(microsecond=0)
        self.cutoff = self.now - timedelta(days=settings.REPORT_RETENTION_DAYS)
        self.stdout.write(self.machine())
        started = time.perf_counter()
        self.build()
        self.stdout.write(f"data built in {time.perf_counter() - started:.1f} s: {self.counts()}")
        rows = []
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            for name, job, bare, restore, *prepare in self.cases():
                for step in prepare:
                    step()
                rows.append(self.compare(name, job, bare, restore))
        self.stdout.write(self.table(rows))
        self.cleanup()

    # --- data ---------------------------------------------------------------------------------

    def build(self) -> None:
        self.cleanup()
        org = Organization.objects.create(id=BENCH_ORG, name="Bench Corp")
        AlertRecipient.objects.create(organization=org, email="bench@example.invalid")
        lic = License.objects.create(
            license_id="L-BENCH-1",
            organization=org,
            starts_at=self.now - timedelta(days=600),
            expires_at=self.now + timedelta(days=365),
        )
        project = Project.objects.create(organization=org, name="bench")
        per_seat_item = self.n // SEAT_ITEMS
        seat_items = [
            LicenseItem.objects.create(
                license=lic,
                project=project,
                product="dbr",
                option="per_client_device",
                quantity=per_seat_item * k // 4 + 1,
            ).pk
            for k in range(1, SEAT_ITEMS + 1)
        ]
        concurrent_items = [
            LicenseItem.objects.create(
                license=lic, project=project, product="dbr", option="per_concurrent_device", quantity=80
            ).pk
            for _ in range(CONCURRENT_ITEMS)
        ]
        n = self.n
        slots = n // (CONCURRENT_ITEMS * DEVICES_PER_SLOT)
        old_slots = slots // 10
        self.params = {"n": n, "slots": slots}
        # Devices: spread over the seat items; every 10th idle past active_until.
        sql(
            """
            INSERT INTO devices_device (project_id, device_uuid, item_id, client_type, origin, platform, device_name,
                sdk_version, state, offline, first_authorized_at, authorized_at, last_seen_at, active_until)
            SELECT %s, 'bench-' || g, (%s::bigint[])[1 + g %% %s], 'desktop', '', '', 'Bench ' || g, '', 'active', false,
                   %s - interval '30 days', %s - interval '1 day', %s - interval '1 hour',
                   CASE WHEN g %% 10 = 0 THEN %s - interval '1 minute' ELSE %s + interval '1 day' END
            FROM generate_series(0, %s - 1) g
            """,
            [project.pk, seat_items, SEAT_ITEMS, self.now, self.now, self.now, self.now, self.now, n],
        )
        first_device = scalar("SELECT min(id) FROM devices_device")
        # Reports, one count each, and the slot-device rows of the concurrent items:
        # g -> item g % 10, slot (g / 10) / 100, device (g / 10) % 100 of that item.
        common = f"""
            FROM (
                SELECT g, (%s::bigint[])[1 + g % {CONCURRENT_ITEMS}] AS item_id,
                       {first_device} + (g % {CONCURRENT_ITEMS}) * {DEVICES_PER_SLOT}
                           + (g / {CONCURRENT_ITEMS}) % {DEVICES_PER_SLOT} AS device_id,
                       CASE WHEN (g / {CONCURRENT_ITEMS}) / {DEVICES_PER_SLOT} < {old_slots}
                            THEN %s - interval '500 days' ELSE %s - interval '3 days' END
                           + ((g / {CONCURRENT_ITEMS}) / {DEVICES_PER_SLOT}) * interval '180 seconds' AS slot_start
                FROM generate_series(0, %s - 1) g
            ) s
        """.replace("%", "%%").replace("%%s", "%s")
        base = [concurrent_items, self.now, self.now, n]
        sql(
            f"""
            INSERT INTO usage_usagereport (device_id, report_id, item_id, slot_start, body_hash, counted, allowed,
                response, received_at)
            SELECT device_id, 'b' || g, item_id, slot_start, '', '{{}}', true, '{{}}', slot_start + interval '170 seconds'
            {common}
            """,
            base,
        )
        first_report = scalar("SELECT min(id) FROM usage_usagereport")
        sql(
            f"""
            INSERT INTO usage_usagecount (report_id, item_id, slot_start, metric, count)
            SELECT {first_report} + g, item_id, slot_start, 'barcode_scans', 1 + g %% 5 {common}
            """,
            base,
        )
        sql(
            f"""
            INSERT INTO usage_slotdevice (item_id, slot_start, device_id, overuse)
            SELECT item_id, slot_start, device_id, (g / {CONCURRENT_ITEMS}) %% {DEVICES_PER_SLOT} >= 80 {common}
            """,
            base,
        )
        sql(
            """
            INSERT INTO usage_sightingmemory (device_id, key, last_ts_ms, updated_at)
            SELECT %s + g, md5(g::text), 0,
                   CASE WHEN g %% 2 = 0 THEN %s - interval '90 days' ELSE %s - interval '1 hour' END
            FROM generate_series(0, %s - 1) g
            """,
            [first_device, self.now, self.now, n // 10],
        )
        for table in TRUNCATE:
            sql(f"VACUUM ANALYZE {table}")

    def counts(self) -> str:
        parts = []
        for table in (
            "devices_device",
            "usage_usagereport",
            "usage_usagecount",
            "usage_slotdevice",
            "usage_sightingmemory",
        ):
            parts.append(f"{table.split('_', 1)[1]} {scalar(f'SELECT count(*) FROM {table}'):,}")
        return ", ".join(parts)

    def cleanup(self) -> None:
        sql("TRUNCATE " + ", ".join(TRUNCATE) + " CASCADE")  # and what references them (per-device days)
        sql("DROP TABLE IF EXISTS bench_saved_report, bench_saved_count, bench_saved_slot, bench_saved_sighting")
        LicenseItem.objects.filter(project__organization_id=BENCH_ORG).delete()
        License.objects.filter(organization_id=BENCH_ORG).delete()
        Project.objects.filter(organization_id=BENCH_ORG).delete()
        Organization.objects.filter(id=BENCH_ORG).delete()

    # --- cases --------------------------------------------------------------------------------

    def cases(self) -> list[tuple]:
        now, closed = self.now, self.now - timedelta(seconds=jobs.SLOT_SECONDS)
        sighting_cutoff = now - timedelta(milliseconds=3000) - jobs.DEDUP_MEMORY_MARGIN

        def restore_devices():
            sql("UPDATE devices_device SET state = 'active', ended_at = NULL WHERE state = 'expired'")
            sql("VACUUM ANALYZE devices_device")

        def bare_expire():
            return sql(
                "UPDATE devices_device SET state = 'expired', ended_at = active_until "
                "WHERE state = 'active' AND active_until <= %s",
                [now],
            )

        def restore_concurrency():
            sql("TRUNCATE usage_concurrencyrollup")
            sql("DELETE FROM usage_jobstate")

        def bare_concurrency():
            return sql(
                """
                INSERT INTO usage_concurrencyrollup (item_id, slot_start, active_devices, "limit", overuse_devices)
                SELECT sd.item_id, sd.slot_start, count(*), i.quantity, sum(CASE WHEN sd.overuse THEN 1 ELSE 0 END)
                FROM usage_slotdevice sd JOIN licenses_licenseitem i ON i.id = sd.item_id
                WHERE sd.slot_start <= %s
                GROUP BY sd.item_id, sd.slot_start, i.quantity
                ON CONFLICT (item_id, slot_start) DO UPDATE SET active_devices = excluded.active_devices,
                    "limit" = excluded."limit", overuse_devices = excluded.overuse_devices
                """,
                [closed],
            )

        def restore_usage():
            sql("TRUNCATE usage_usagerollup")
            sql("DELETE FROM usage_jobstate")

        def bare_usage():
            n = sql(
                """
                INSERT INTO usage_usagerollup (item_id, granularity, bucket_start, metric, count)
                SELECT item_id, '2h', to_timestamp(floor(extract(epoch FROM slot_start) / 7200) * 7200), metric,
                       sum(count)
                FROM usage_usagecount GROUP BY 1, 3, 4
                ON CONFLICT (item_id, granularity, bucket_start, metric) DO UPDATE SET count = excluded.count
                """
            )
            return n + sql(
                """
                INSERT INTO usage_usagerollup (item_id, granularity, bucket_start, metric, count)
                SELECT item_id, 'day', to_timestamp(floor(extract(epoch FROM bucket_start) / 86400) * 86400), metric,
                       sum(count)
                FROM usage_usagerollup WHERE granularity = '2h' GROUP BY 1, 3, 4
                ON CONFLICT (item_id, granularity, bucket_start, metric) DO UPDATE SET count = excluded.count
                """
            )

        def restore_alerts():
            sql("TRUNCATE usage_alertsent")

        def bare_alerts():
            # The same work without the email: count seats per item, insert the crossed thresholds.
            from devices.models import holding_seat_sql

            return sql(
                f"""
                INSERT INTO usage_alertsent (item_id, kind, threshold, sent_at)
                SELECT u.item_id, 'seats', t.threshold, %s
                FROM (SELECT d.item_id, count(*) AS used, i.quantity AS lim
                      FROM devices_device d JOIN licenses_licenseitem i ON i.id = d.item_id
                      WHERE {holding_seat_sql("d")} GROUP BY d.item_id, i.quantity) u
                CROSS JOIN (VALUES (60), (80), (100)) t(threshold)
                WHERE u.used * 100 >= u.lim * t.threshold
                ON CONFLICT DO NOTHING
                """,
                [now, now],
            )

        def save_purged():
            sql("DROP TABLE IF EXISTS bench_saved_report, bench_saved_count, bench_saved_slot, bench_saved_sighting")
            sql(
                "CREATE TABLE bench_saved_report AS SELECT * FROM usage_usagereport WHERE received_at < %s",
                [self.cutoff],
            )
            sql(
                "CREATE TABLE bench_saved_count AS SELECT c.* FROM usage_usagecount c "
                "JOIN bench_saved_report r ON r.id = c.report_id"
            )
            sql("CREATE TABLE bench_saved_slot AS SELECT * FROM usage_slotdevice WHERE slot_start < %s", [self.cutoff])
            sql(
                "CREATE TABLE bench_saved_sighting AS SELECT * FROM usage_sightingmemory WHERE updated_at < %s",
                [sighting_cutoff],
            )

        def restore_purged():
            sql("INSERT INTO usage_usagereport SELECT * FROM bench_saved_report ON CONFLICT DO NOTHING")
            sql("INSERT INTO usage_usagecount SELECT * FROM bench_saved_count ON CONFLICT DO NOTHING")
            sql("INSERT INTO usage_slotdevice SELECT * FROM bench_saved_slot ON CONFLICT DO NOTHING")
            sql("INSERT INTO usage_sightingmemory SELECT * FROM bench_saved_sighting ON CONFLICT DO NOTHING")
            for table in ("usage_usagereport", "usage_usagecount", "usage_slotdevice", "usage_sightingmemory"):
                sql(f"VACUUM ANALYZE {table}")

        def bare_purge():
            n = sql(
                "DELETE FROM usage_usagecount WHERE report_id IN "
                "(SELECT id FROM usage_usagereport WHERE received_at < %s)",
                [self.cutoff],
            )
            n += sql("DELETE FROM usage_usagereport WHERE received_at < %s", [self.cutoff])
            n += sql("DELETE FROM usage_slotdevice WHERE slot_start < %s", [self.cutoff])
            n += sql("DELETE FROM usage_sightingmemory WHERE updated_at < %s", [sighting_cutoff])
            n += sql("DELETE FROM devices_decision WHERE created_at < %s", [self.cutoff])
            return n

        # Steady state: the rollups are up to date, then 1 % of the slot rows' reports arrive
        # late (received a minute ago, for slots up to 3 days old). The job finds them through
        # its watermark; the bare SQL recomputes exactly those slots and buckets, known upfront.
        slots = self.params["slots"]
        late_from = now - timedelta(days=3) + timedelta(seconds=180 * (slots - max(slots // 100, 1)))
        late_bucket = late_from - timedelta(seconds=int(late_from.timestamp()) % jobs.BUCKET_SECONDS)
        late_day = late_from - timedelta(seconds=int(late_from.timestamp()) % jobs.DAY_SECONDS)

        def prepare_incremental():
            jobs.rollup_concurrency(now=now)
            jobs.rollup_usage(now=now)
            sql(
                "UPDATE usage_usagereport SET received_at = %s WHERE slot_start >= %s",
                [now - timedelta(minutes=1), late_from],
            )
            sql("VACUUM ANALYZE usage_usagereport")
            restore_watermarks()

        def restore_watermarks():
            sql("UPDATE usage_jobstate SET watermark = %s", [now - timedelta(minutes=3)])

        def bare_concurrency_late():
            return sql(
                """
                INSERT INTO usage_concurrencyrollup (item_id, slot_start, active_devices, "limit", overuse_devices)
                SELECT sd.item_id, sd.slot_start, count(*), i.quantity, sum(CASE WHEN sd.overuse THEN 1 ELSE 0 END)
                FROM usage_slotdevice sd JOIN licenses_licenseitem i ON i.id = sd.item_id
                WHERE sd.slot_start >= %s AND sd.slot_start <= %s
                GROUP BY sd.item_id, sd.slot_start, i.quantity
                ON CONFLICT (item_id, slot_start) DO UPDATE SET active_devices = excluded.active_devices,
                    "limit" = excluded."limit", overuse_devices = excluded.overuse_devices
                """,
                [late_from, closed],
            )

        def bare_usage_late():
            n = sql(
                """
                INSERT INTO usage_usagerollup (item_id, granularity, bucket_start, metric, count)
                SELECT item_id, '2h', to_timestamp(floor(extract(epoch FROM slot_start) / 7200) * 7200), metric,
                       sum(count)
                FROM usage_usagecount WHERE slot_start >= %s GROUP BY 1, 3, 4
                ON CONFLICT (item_id, granularity, bucket_start, metric) DO UPDATE SET count = excluded.count
                """,
                [late_bucket],
            )
            return n + sql(
                """
                INSERT INTO usage_usagerollup (item_id, granularity, bucket_start, metric, count)
                SELECT item_id, 'day', to_timestamp(floor(extract(epoch FROM bucket_start) / 86400) * 86400), metric,
                       sum(count)
                FROM usage_usagerollup WHERE granularity = '2h' AND bucket_start >= %s GROUP BY 1, 3, 4
                ON CONFLICT (item_id, granularity, bucket_start, metric) DO UPDATE SET count = excluded.count
                """,
                [late_day],
            )

        save_purged()
        return [
            ("expire_idle_devices", lambda: jobs.expire_idle_devices(now=now), bare_expire, restore_devices),
            ("rollup_concurrency", lambda: jobs.rollup_concurrency(now=now), bare_concurrency, restore_concurrency),
            ("rollup_usage", lambda: jobs.rollup_usage(now=now), bare_usage, restore_usage),
            (
                "rollup_concurrency, 1 % late",
                lambda: jobs.rollup_concurrency(now=now),
                bare_concurrency_late,
                restore_watermarks,
                prepare_incremental,
            ),
            ("rollup_usage, 1 % late", lambda: jobs.rollup_usage(now=now), bare_usage_late, restore_watermarks),
            ("send_usage_alerts", lambda: jobs.send_usage_alerts(now=now), bare_alerts, restore_alerts),
            ("purge_old_data", lambda: jobs.purge_old_data(now=now), bare_purge, restore_purged),
        ]

    # --- measuring ----------------------------------------------------------------------------

    def measure(self, fn: Callable) -> tuple[float, float, float, object]:
        try:  # start each timing with no dirty pages left to flush (less noise); needs superuser
            sql("CHECKPOINT")
        except DatabaseError:
            pass
        gc.collect()
        rss_before = maxrss_kib()
        tracemalloc.start()
        started = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return elapsed, peak / 2**20, (maxrss_kib() - rss_before) / 1024, result

    def compare(self, name: str, job: Callable, bare: Callable, restore: Callable) -> dict:
        bare()  # warm the cache with the same pages
        restore()
        job_times, bare_times, peaks, rss = [], [], [], []
        for _ in range(self.rounds):
            job_s, peak_mib, rss_mib, summary = self.measure(job)
            restore()
            bare_s, _, _, bare_rows = self.measure(bare)
            restore()
            job_times.append(job_s)
            bare_times.append(bare_s)
            peaks.append(peak_mib)
            rss.append(rss_mib)
        self.stdout.write(f"{name}: {summary}; job {fmt(job_times)} s, bare {fmt(bare_times)} s")
        job_s, bare_s = statistics.median(job_times), statistics.median(bare_times)
        return {
            "job": name,
            "job_s": job_s,
            "bare_s": bare_s,
            "ratio": job_s / bare_s if bare_s else float("nan"),
            "peak_mib": max(peaks),
            "rss_mib": max(rss),
            "bare_rows": bare_rows,
        }

    def table(self, rows: list[dict]) -> str:
        lines = [
            "",
            f"median of {self.rounds} round(s), each job and its bare SQL on the same restored data",
            "",
            "| job | job (s) | bare SQL (s) | ratio | Python heap peak (MiB) | max RSS growth (MiB) | rows (bare) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['job']} | {r['job_s']:.3f} | {r['bare_s']:.3f} | {r['ratio']:.2f} | {r['peak_mib']:.2f} | "
                f"{r['rss_mib']:.1f} | {r['bare_rows']:,} |"
            )
        return "\n".join(lines)

    def machine(self) -> str:
        mem_kib = 0
        try:
            with open("/proc/meminfo") as f:
                mem_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        except (OSError, StopIteration, ValueError):
            pass
        version = scalar("SHOW server_version")
        return (
            f"machine: {os.cpu_count()} CPUs (nproc), {mem_kib / 2**20:.1f} GiB memory, {platform.platform()}, "
            f"PostgreSQL {version}; scale {self.n:,} rows"
        )

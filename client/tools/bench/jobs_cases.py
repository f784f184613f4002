"""The cases of ``bench_jobs``: each scheduled job (``jobs.<name>(now=...)``, what the Celery task
calls), the bare SQL statement doing the same work on the same data, and how the data is restored
between them; and the steady state, 1 % of the reports arriving late."""

from __future__ import annotations

from datetime import timedelta

from client.tools.bench.common import sql
from client.tools.bench.jobs_data import JobsBench
from usage import jobs


def cases(b: JobsBench) -> list[tuple]:
    now, closed = b.now, b.now - timedelta(seconds=jobs.SLOT_SECONDS)
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
            [b.cutoff],
        )
        sql(
            "CREATE TABLE bench_saved_count AS SELECT c.* FROM usage_usagecount c "
            "JOIN bench_saved_report r ON r.id = c.report_id"
        )
        sql("CREATE TABLE bench_saved_slot AS SELECT * FROM usage_slotdevice WHERE slot_start < %s", [b.cutoff])
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
            "DELETE FROM usage_usagecount WHERE report_id IN (SELECT id FROM usage_usagereport WHERE received_at < %s)",
            [b.cutoff],
        )
        n += sql("DELETE FROM usage_usagereport WHERE received_at < %s", [b.cutoff])
        n += sql("DELETE FROM usage_slotdevice WHERE slot_start < %s", [b.cutoff])
        n += sql("DELETE FROM usage_sightingmemory WHERE updated_at < %s", [sighting_cutoff])
        n += sql("DELETE FROM devices_decision WHERE created_at < %s", [b.cutoff])
        return n

    # Steady state: the rollups are up to date, then 1 % of the slot rows' reports arrive
    # late (received a minute ago, for slots up to 3 days old). The job finds them through
    # its watermark; the bare SQL recomputes exactly those slots and buckets, known upfront.
    slots = b.params["slots"]
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

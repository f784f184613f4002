"""The data of ``bench_jobs``: 1,000,000 devices on 100 client-device items (a tenth idle past
``active_until``), 1,000,000 usage reports each with one count and one slot-device row (10
concurrent items x 1,000 slots x 100 devices; the oldest 10 % past retention) and 100,000 dedup
memory rows, with ``generate_series`` INSERTs; ``JobsBench`` is the run's state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from client.tools.bench.common import scalar, sql
from devices.models import Decision, Device, QuotaCounter
from licenses.models import AlertRecipient, License, LicenseItem, Organization, Project
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


@dataclass
class JobsBench:
    """One run: its time, retention cutoff, row count, rounds, and where it prints."""

    now: datetime
    cutoff: datetime
    n: int
    rounds: int
    out: Callable[[str], object] = print
    params: dict = field(default_factory=dict)


def build(b: JobsBench) -> None:
    cleanup()
    org = Organization.objects.create(id=BENCH_ORG, name="Bench Corp")
    AlertRecipient.objects.create(organization=org, email="bench@example.invalid")
    lic = License.objects.create(
        license_id="L-BENCH-1",
        organization=org,
        starts_at=b.now - timedelta(days=600),
        expires_at=b.now + timedelta(days=365),
    )
    project = Project.objects.create(organization=org, name="bench")
    per_seat_item = b.n // SEAT_ITEMS
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
    n = b.n
    slots = n // (CONCURRENT_ITEMS * DEVICES_PER_SLOT)
    old_slots = slots // 10
    b.params = {"n": n, "slots": slots}
    # Devices: spread over the seat items; every 10th idle past active_until.
    sql(
        """
        INSERT INTO devices_device (project_id, device_uuid, item_id, client_type, origin, platform, device_name,
            sdk_version, user_agent, state, offline, first_authorized_at, authorized_at, last_seen_at, active_until)
        SELECT %s, 'bench-' || g, (%s::bigint[])[1 + g %% %s], 'desktop', '', '', 'Bench ' || g, '', '', 'active', false,
               %s - interval '30 days', %s - interval '1 day', %s - interval '1 hour',
               CASE WHEN g %% 10 = 0 THEN %s - interval '1 minute' ELSE %s + interval '1 day' END
        FROM generate_series(0, %s - 1) g
        """,
        [project.pk, seat_items, SEAT_ITEMS, b.now, b.now, b.now, b.now, b.now, n],
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
    base = [concurrent_items, b.now, b.now, n]
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
        [first_device, b.now, b.now, n // 10],
    )
    for table in TRUNCATE:
        sql(f"VACUUM ANALYZE {table}")


def counts() -> str:
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


def cleanup() -> None:
    sql("TRUNCATE " + ", ".join(TRUNCATE) + " CASCADE")  # and what references them (per-device days)
    sql("DROP TABLE IF EXISTS bench_saved_report, bench_saved_count, bench_saved_slot, bench_saved_sighting")
    LicenseItem.objects.filter(project__organization_id=BENCH_ORG).delete()
    License.objects.filter(organization_id=BENCH_ORG).delete()
    Project.objects.filter(organization_id=BENCH_ORG).delete()
    Organization.objects.filter(id=BENCH_ORG).delete()


# --- cases --------------------------------------------------------------------------------

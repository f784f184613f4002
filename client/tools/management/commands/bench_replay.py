"""``python manage.py bench_replay [--reports 1000000] [--devices 100]``: the what-if replay
(``usage.replay``) over a large history, its time and its Python heap peak (tracemalloc), at a
tenth of the reports and at all of them: constant memory means the two peaks are close
(``make bench``; docs/insight.md).

It builds, in a project of its own (``bench-replay``, rebuilt on every run), one per_client_device
item of ``--devices`` seats, every device authorized once, and ``--reports`` usage reports, every
device reporting every 3-minute slot (1,000,000 reports of 100 devices: about 21 days), inserted
with ``bulk_create`` in batches. Then it replays the first tenth of the window and the whole
window with a quantity of 80 %, each under tracemalloc, and prints one JSON object.

With ``--sightings K`` the item is a per_barcode_scan item and every report carries K raw
sightings of barcodes never seen before (a parcel line: every slot new ones), packed as the API
stores them (``usage.sightings_store``); the replays change ``dedup_interval_ms`` to 1000, so each
report's sightings are deduplicated again (``usage.replay.book.ReplayDedup``).
"""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from devices.models import Decision, Device
from licenses.clock import SLOT, slot_start_of
from licenses.models import License, LicenseItem, Organization, Project
from usage.dedup import Sighting
from usage.models import UsageCount, UsageReport
from usage.replay import Replay
from usage.sightings_store import pack

BATCH = 20_000


class Command(BaseCommand):
    help = "Time the what-if replay over a large history and measure its memory (tracemalloc)."

    def add_arguments(self, parser):
        parser.add_argument("--reports", type=int, default=1_000_000)
        parser.add_argument("--devices", type=int, default=100)
        parser.add_argument("--keep", action="store_true", help="keep the built history (rerun without --build)")
        parser.add_argument("--sightings", type=int, default=0, help="a scan item, K raw sightings a report")

    def handle(self, *args, reports: int, devices: int, keep: bool, sightings: int = 0, **options):
        self.sightings = sightings
        built = time.perf_counter()
        item, start, end = self.build(reports=reports, devices=devices)
        built = time.perf_counter() - built
        tenth = start + (end - start) / 10
        if sightings:
            changes = {"dedup_interval_ms": 1000}
        else:
            changes = {"quantity": max(1, devices * 8 // 10)}
        small = self.measure(item, start, tenth, changes=changes)
        full = self.measure(item, start, end, changes=changes)
        summary = {
            "database": connection.vendor,
            "devices": devices,
            "reports": reports,
            "sightings_per_report": sightings,
            "changes": changes,
            "days": round((end - start).total_seconds() / 86400, 1),
            "build_s": round(built, 1),
            "tenth": small,
            "all": full,
            "peak_ratio": round(full["peak_kib"] / small["peak_kib"], 2) if small["peak_kib"] else None,
        }
        self.stdout.write(json.dumps(summary))
        if not keep:
            self.clean()

    def clean(self) -> None:
        project = Project.objects.filter(name="bench-replay").first()
        if project is None:
            return
        items = list(project.items.values_list("pk", flat=True))
        with connection.cursor() as cursor:  # in SQL: the ORM would load every report to delete it
            for model in (UsageCount, UsageReport):
                table = connection.ops.quote_name(model._meta.db_table)
                cursor.execute(
                    f"DELETE FROM {table} WHERE item_id = ANY(%s)"
                    if connection.vendor == "postgresql"
                    else f"DELETE FROM {table} WHERE item_id IN ({','.join(map(str, items)) or 'NULL'})",
                    [items] if connection.vendor == "postgresql" else [],
                )
        Decision.objects.filter(project=project).delete()
        Device.objects.filter(project=project).delete()
        licenses = list(License.objects.filter(items__project=project).distinct())
        LicenseItem.objects.filter(project=project).delete()
        for lic in licenses:
            lic.delete()
        project.delete()

    def build(self, *, reports: int, devices: int):
        self.clean()
        now = timezone.now()
        slots = -(-reports // devices)
        start = slot_start_of(now) - SLOT * (slots + 1)
        org, _ = Organization.objects.get_or_create(id="999999", defaults={"name": "Bench replay"})
        lic = License.objects.create(
            license_id=f"bench-replay-{int(now.timestamp())}",
            organization=org,
            starts_at=start - timedelta(days=1),
            expires_at=now + timedelta(days=365),
        )
        project = Project.objects.create(organization=org, name="bench-replay")
        if self.sightings:
            item = LicenseItem.objects.create(
                license=lic, project=project, product="dbr", option="per_barcode_scan", quantity=2_000_000_000
            )
        else:
            item = LicenseItem.objects.create(
                license=lic,
                project=project,
                product="dbr",
                option="per_client_device",
                quantity=devices,
                period="monthly",
            )
        with transaction.atomic():
            rows = [
                Device(
                    project=project,
                    device_uuid=f"bench-{k:05d}",
                    item=item,
                    client_type="desktop",
                    first_authorized_at=start,
                    authorized_at=start,
                    last_seen_at=start,
                    active_until=start + timedelta(days=30),
                )
                for k in range(devices)
            ]
            Device.objects.bulk_create(rows)
            ids = dict(Device.objects.filter(project=project).values_list("device_uuid", "pk"))
            Decision.objects.bulk_create(
                Decision(
                    project=project,
                    device_id=ids[d.device_uuid],
                    device_uuid=d.device_uuid,
                    item=item,
                    endpoint=Decision.AUTHORIZE,
                    allowed=True,
                    rule="seat_taken",
                    created_at=start + timedelta(seconds=k),
                )
                for k, d in enumerate(rows)
            )
        if connection.vendor == "postgresql":
            self.insert_sql(item, start, slots=slots, devices=devices, reports=reports)
            return item, start, start + SLOT * (slots + 2)
        batch: list[UsageReport] = []
        n = 0
        for s in range(slots):
            slot = start + SLOT * (s + 1)
            for k in range(devices):
                if n >= reports:
                    break
                batch.append(
                    UsageReport(
                        device_id=ids[f"bench-{k:05d}"],
                        report_id=f"r-{s}",
                        item=item,
                        slot_start=slot,
                        body_hash="0" * 64,
                        counted={"barcode_scans": max(1, self.sightings)},
                        allowed=True,
                        response={"status": "accepted"},
                        received_at=slot + timedelta(seconds=170 + k % 9),
                        raw_sightings=self.blob(slot, s) if self.sightings else None,
                    )
                )
                n += 1
            if len(batch) >= BATCH:
                UsageReport.objects.bulk_create(batch)
                batch = []
        if batch:
            UsageReport.objects.bulk_create(batch)
        return item, start, start + SLOT * (slots + 2)

    def blob(self, slot, s: int) -> bytes:
        """Slot s's packed sightings: K parcels never seen before, 100 ms apart."""
        at = int(slot.timestamp() * 1000)
        parcels = [Sighting(at + 100 * j, j, "CODE_128", f"P{s:07d}-{j:03d}") for j in range(self.sightings)]
        return pack(parcels, counted=self.sightings)

    def insert_sql(self, item, start, *, slots: int, devices: int, reports: int) -> None:
        """The reports in one ``INSERT ... SELECT`` over ``generate_series`` (PostgreSQL): device
        k reports slot s at 170 + k % 9 seconds into it, in device order within the slot; with
        ``--sightings`` each with its slot's packed sightings (a table of one blob a slot)."""
        report = connection.ops.quote_name(UsageReport._meta.db_table)
        device = connection.ops.quote_name(Device._meta.db_table)
        counted = max(1, self.sightings)
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE bench_blobs (s integer PRIMARY KEY, blob bytea)")
            if self.sightings:
                rows = [(s, self.blob(start + SLOT * (s + 1), s)) for s in range(slots)]
                for i in range(0, len(rows), BATCH):
                    cursor.executemany("INSERT INTO bench_blobs VALUES (%s, %s)", rows[i : i + BATCH])
            cursor.execute(
                f"""INSERT INTO {report} (device_id, report_id, item_id, slot_start, body_hash, counted, allowed,
                    response, received_at, raw_sightings)
                SELECT d.id, 'r-' || s, %s, %s + (s + 1) * interval '180 seconds', repeat('0', 64),
                    jsonb_build_object('barcode_scans', %s), true, '{{"status": "accepted"}}'::jsonb,
                    %s + (s + 1) * interval '180 seconds' + (170 + d.k %% 9) * interval '1 second', b.blob
                FROM generate_series(0, %s) s
                CROSS JOIN (SELECT id, row_number() OVER (ORDER BY device_uuid) - 1 AS k FROM {device}
                            WHERE item_id = %s) d
                LEFT JOIN bench_blobs b USING (s)
                WHERE s * %s + d.k < %s""",
                [item.pk, start, counted, start, slots - 1, item.pk, devices, reports],
            )
            cursor.execute("DROP TABLE bench_blobs")
        connection.cursor().execute("ANALYZE")

    def measure(self, item, start, end, *, changes: dict) -> dict:
        gc.collect()
        tracemalloc.start()
        began = time.perf_counter()
        result = Replay(item, start=start, end=end, changes=changes).run()
        elapsed = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {
            "requests": result.requests,
            "refused": result.refused,
            "barcode_scans": result.barcode_scans,
            "reports_deduplicated": result.reports_deduplicated,
            "seconds": round(elapsed, 2),
            "requests_per_s": int(result.requests / elapsed) if elapsed else None,
            "peak_kib": peak // 1024,
        }

"""``python manage.py bench_replay [--reports 1000000] [--devices 100]``: the what-if replay
(``usage.replay``) over a large history, its time and its Python heap peak (tracemalloc), at a
tenth of the reports and at all of them: constant memory means the two peaks are close
(``make bench``; docs/insight.md).

It builds, in a project of its own (``bench-replay``, rebuilt on every run), one per_client_device
item of ``--devices`` seats, every device authorized once, and ``--reports`` usage reports, every
device reporting every 3-minute slot (1,000,000 reports of 100 devices: about 21 days), inserted
with ``bulk_create`` in batches. Then it replays the first tenth of the window and the whole
window with a quantity of 80 %, each under tracemalloc, and prints one JSON object.
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
from usage.models import UsageCount, UsageReport
from usage.replay import Replay

BATCH = 20_000


class Command(BaseCommand):
    help = "Time the what-if replay over a large history and measure its memory (tracemalloc)."

    def add_arguments(self, parser):
        parser.add_argument("--reports", type=int, default=1_000_000)
        parser.add_argument("--devices", type=int, default=100)
        parser.add_argument("--keep", action="store_true", help="keep the built history (rerun without --build)")

    def handle(self, *args, reports: int, devices: int, keep: bool, **options):
        built = time.perf_counter()
        item, start, end = self.build(reports=reports, devices=devices)
        built = time.perf_counter() - built
        tenth = start + (end - start) / 10
        small = self.measure(item, start, tenth, quantity=max(1, devices * 8 // 10))
        full = self.measure(item, start, end, quantity=max(1, devices * 8 // 10))
        summary = {
            "database": connection.vendor,
            "devices": devices,
            "reports": reports,
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
        item = LicenseItem.objects.create(
            license=lic, project=project, product="dbr", option="per_client_device", quantity=devices, period="monthly"
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
                        counted={"barcode_scans": 1},
                        allowed=True,
                        response={"status": "accepted"},
                        received_at=slot + timedelta(seconds=170 + k % 9),
                    )
                )
                n += 1
            if len(batch) >= BATCH:
                UsageReport.objects.bulk_create(batch)
                batch = []
        if batch:
            UsageReport.objects.bulk_create(batch)
        return item, start, start + SLOT * (slots + 2)

    def insert_sql(self, item, start, *, slots: int, devices: int, reports: int) -> None:
        """The reports in one ``INSERT ... SELECT`` over ``generate_series`` (PostgreSQL): device
        k reports slot s at 170 + k % 9 seconds into it, in device order within the slot."""
        report = connection.ops.quote_name(UsageReport._meta.db_table)
        device = connection.ops.quote_name(Device._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {report} (device_id, report_id, item_id, slot_start, body_hash, counted, allowed,
                    response, received_at)
                SELECT d.id, 'r-' || s, %s, %s + (s + 1) * interval '180 seconds', repeat('0', 64),
                    '{{"barcode_scans": 1}}'::jsonb, true, '{{"status": "accepted"}}'::jsonb,
                    %s + (s + 1) * interval '180 seconds' + (170 + d.k %% 9) * interval '1 second'
                FROM generate_series(0, %s) s
                CROSS JOIN (SELECT id, row_number() OVER (ORDER BY device_uuid) - 1 AS k FROM {device}
                            WHERE item_id = %s) d
                WHERE s * %s + d.k < %s""",
                [item.pk, start, start, slots - 1, item.pk, devices, reports],
            )
        connection.cursor().execute("ANALYZE")

    def measure(self, item, start, end, *, quantity: int) -> dict:
        gc.collect()
        tracemalloc.start()
        began = time.perf_counter()
        result = Replay(item, start=start, end=end, changes={"quantity": quantity}).run()
        elapsed = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {
            "requests": result.requests,
            "refused": result.refused,
            "seconds": round(elapsed, 2),
            "requests_per_s": int(result.requests / elapsed) if elapsed else None,
            "peak_kib": peak // 1024,
        }

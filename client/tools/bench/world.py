"""The data of ``bench_api``: the projects and items the load and the in-process table use, and
the portal project of 100,000 devices and 1,000,000 usage reports, generated with SQL
(``generate_series``) in a minute or two, with the per-device days the API keeps with each
report (``usage.hot_sql``)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import connection, transaction

OWNER_PASSWORD = "bench-owner-" + secrets.token_urlsafe(8)
SESSION_PASSWORD = "bench-session-" + secrets.token_urlsafe(8)  # the protected project's (SPEC 6)
SPREAD_ITEMS = 100  # "reports/s spread over 100 items"


# The in-process table's full item: its seats and their grace all taken (``hotpath.fill_seats``), so a
# new device is refused the exact way (devices.seats), as on a customer's item at its limit.
CEILING_SEATS = 40_000


def create_world(now, plan) -> dict:
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
                    ("load_seats_empty", "per_client_device", 10**6),
                    ("hot_seats_empty", "per_client_device", 10**6),
                    ("hot_seats_full", "per_client_device", 10**6),
                    ("hot_seats_protected", "per_client_device", 10**6),
                    ("hot_seats_ceiling", "per_client_device", CEILING_SEATS),
                    ("hot_scans", "per_barcode_scan", 2 * 10**9),
                )
            }
        )
        # The usage load spread over SPREAD_ITEMS scan items, each alone in its project, in an
        # organization of their own (the portal owner's pages show only the bench projects).
        spread_org = Organization.objects.create(id="999002", name="Bench Spread Corp")
        spread_lic = License.objects.create(
            license_id="L-BENCH-SPREAD", organization=spread_org, starts_at=now - timedelta(days=60),
            expires_at=now + timedelta(days=300),
        )  # fmt: skip
        world["spread_scans"] = [
            LicenseItem.objects.create(
                license=spread_lic, project=Project.objects.create(organization=spread_org, name=f"spread-{k:03d}"),
                product="dbr", option="per_barcode_scan", edition="mobile", quantity=10**9,
            )
            for k in range(SPREAD_ITEMS)
        ]  # fmt: skip
        from licenses.protection import set_protection

        set_protection(world["hot_seats_protected"].project, actor="bench", now=now, session_password=SESSION_PASSWORD)
        owner = get_user_model().objects.create_user(username="bench-owner", password=OWNER_PASSWORD)
        Membership.objects.create(user=owner, organization=org, role=Membership.OWNER)
    return world


def generate(world, plan, now) -> None:
    """100,000 devices (half web seats, half mobile scanners, a tenth expired) and their
    1,000,000 reports spread over the last 29 days, with their usage counts, in SQL."""
    from devices import tally
    from devices.models import Device, DeviceSearch, DeviceTally, QuotaCounter
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
                sdk_version, user_agent, state, first_authorized_at, authorized_at, last_seen_at, first_used_at,
                active_until, ended_at, offline)
            SELECT %(project)s, 'bench-' || lpad(g::text, 7, '0'),
                CASE WHEN g %% 2 = 0 THEN %(web)s ELSE %(scan)s END,
                CASE WHEN g %% 2 = 0 THEN 'web' ELSE 'mobile' END,
                CASE WHEN g %% 2 = 0 THEN 'https://app' || (g %% 50) || '.bench.example' ELSE '' END,
                'linux', 'Bench device ' || g, '10.4', 'BenchSDK/10.4',
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
        # The devices' tally rows (one per device, by trigger) folded, as the expiry job does
        # every minute in service (devices.tally).
        tally.compact()
        # Vacuumed as a database in service is (visibility map set, statistics fresh), so that no
        # autovacuum of the million new rows runs beside the measurements that follow.
        tables = (device, DeviceSearch._meta.db_table, DeviceTally._meta.db_table, report, count, day)
        for name in tables:  # the search text and the tally: by trigger
            cursor.execute(f"{'ANALYZE' if connection.in_atomic_block else 'VACUUM (ANALYZE)'} {name}")
    used = UsageCount.objects.filter(item=world["portal_scans"]).values_list("count", flat=True)
    QuotaCounter.objects.create(item=world["portal_scans"], metric="barcode_scans", used=sum(used))

"""Key sharing and clones (docs/insight.md): per project and UTC day, what one customer's fleet
does not do, each flag with its evidence.

- ``many_networks``: the project's device requests came from more than ``ANOMALY_NETWORKS_PER_DAY``
  distinct client networks (/24 for IPv4, /48 for IPv6) in the day.
- ``foreign_domains``: its web devices seen in the day came from more than
  ``ANOMALY_DOMAINS_PER_DAY`` registrable domains outside the project's allowed domains (all of
  them when it has none).
- ``far_networks``: a device whose contacts (reports, decisions) came from far-apart networks
  (another /16 for IPv4, /32 for IPv6) within ``ANOMALY_HOP_MINUTES``: two copies of one device.
- ``clock_rollback``: a device whose reports name a slot at least ``ANOMALY_ROLLBACK_MINUTES``
  before the latest it reported, a slot it had already reported (DLS's clone check: its clock
  ran backwards, or a copy of it runs elsewhere). A late batch of buffered reports never names a
  slot already reported, so offline devices are not flagged.

Addresses come from ``Decision.client_address`` and ``UsageReport.client_address`` (set by the
device API, ``devices.context``). ``detect_anomalies`` (the job of the same name, hourly) writes
the flags of today and yesterday (``ProjectAnomaly``, one per project, day and kind) and, once per
project and day, emails the organization's alert recipients and emits ``project.anomaly``.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from devices.models import Decision, Device
from licenses.clock import rfc3339
from licenses.domains import domain_matches, domain_unit, origin_host
from licenses.events import emit
from licenses.models import Project
from usage.models import AnomalyNotice, ProjectAnomaly, UsageReport
from usage.notices import _send, recipients_of

CHUNK = 5000


def thresholds() -> dict[str, int]:
    return {
        "networks_per_day": settings.ANOMALY_NETWORKS_PER_DAY,
        "domains_per_day": settings.ANOMALY_DOMAINS_PER_DAY,
        "hop_minutes": settings.ANOMALY_HOP_MINUTES,
        "rollback_minutes": settings.ANOMALY_ROLLBACK_MINUTES,
    }


def network_of(address: str, v4: int = 24, v6: int = 48) -> str | None:
    """The client network of an address: its /24 (IPv4) or /48 (IPv6)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    prefix = v4 if ip.version == 4 else v6
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def far_apart(a: str, b: str) -> bool:
    """Two addresses in different /16 (IPv4) or /32 (IPv6) blocks, or of different families."""
    return network_of(a, 16, 32) != network_of(b, 16, 32)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _contacts(project: Project, start: datetime, end: datetime) -> Iterable[tuple[datetime, str, str | None]]:
    """(time, device_uuid, address) of the project's recorded requests of the window."""
    decisions = (
        Decision.objects.filter(project=project, created_at__gte=start, created_at__lt=end)
        .exclude(client_address=None)
        .values_list("created_at", "device_uuid", "client_address")
    )
    yield from decisions.iterator(chunk_size=CHUNK)
    reports = (
        UsageReport.objects.filter(device__project=project, received_at__gte=start, received_at__lt=end)
        .exclude(client_address=None)
        .values_list("received_at", "device__device_uuid", "client_address")
    )
    yield from reports.iterator(chunk_size=CHUNK)


def _many_networks(project: Project, contacts: list[tuple[datetime, str, str]], limit: int) -> dict[str, Any] | None:
    devices_by_network: dict[str, set[str]] = defaultdict(set)
    for _at, uuid, address in contacts:
        network = network_of(address)
        if network:
            devices_by_network[network].add(uuid)
    if len(devices_by_network) <= limit:
        return None
    top = sorted(devices_by_network.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:10]
    return {
        "summary": f"requests came from {len(devices_by_network)} client networks in the day (more than {limit})",
        "evidence": {
            "networks": len(devices_by_network),
            "threshold": limit,
            "top": [{"network": n, "devices": len(d)} for n, d in top],
        },
    }


def _far_networks(contacts: list[tuple[datetime, str, str]], hop: timedelta) -> dict[str, Any] | None:
    by_device: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for at, uuid, address in contacts:
        by_device[uuid].append((at, address))
    found = []
    for uuid, seen in sorted(by_device.items()):
        seen.sort()
        for (t1, a1), (t2, a2) in zip(seen, seen[1:], strict=False):
            if t2 - t1 <= hop and far_apart(a1, a2):
                found.append({"device_uuid": uuid, "first": [rfc3339(t1), a1], "then": [rfc3339(t2), a2]})
                break
    if not found:
        return None
    minutes = int(hop.total_seconds() // 60)
    return {
        "summary": f"{len(found)} device(s) contacted the server from far-apart networks within {minutes} minutes",
        "evidence": {"devices": found[:20], "count": len(found), "threshold_minutes": minutes},
    }


def _foreign_domains(project: Project, start: datetime, end: datetime, limit: int) -> dict[str, Any] | None:
    origins = (
        Device.objects.filter(project=project, client_type="web", last_seen_at__gte=start, first_authorized_at__lt=end)
        .exclude(origin="")
        .values_list("origin", flat=True)
        .distinct()
    )
    allowed = list(project.allowed_domains or [])
    domains: dict[str, int] = defaultdict(int)
    for origin in origins.iterator(chunk_size=CHUNK):
        host = origin_host(origin)
        if any(domain_matches(d, host) for d in allowed):
            continue
        domains[domain_unit(host)] += 1
    if len(domains) <= limit:
        return None
    where = "outside the project's allowed domains" if allowed else "(the project restricts no domains)"
    return {
        "summary": f"web devices came from {len(domains)} registrable domains {where}, more than {limit}",
        "evidence": {
            "domains": sorted(domains)[:20],
            "count": len(domains),
            "threshold": limit,
            "allowed_domains": allowed,
        },
    }


def _clock_rollback(project: Project, start: datetime, end: datetime, back: timedelta) -> dict[str, Any] | None:
    reports = (
        UsageReport.objects.filter(device__project=project, received_at__gte=start, received_at__lt=end)
        .order_by("device_id", "received_at", "id")
        .values_list("device_id", "device__device_uuid", "report_id", "slot_start", "received_at")
    )
    found: list[dict[str, Any]] = []
    current, latest, flagged = None, None, False
    slots: set[datetime] = set()
    for device_id, uuid, report_id, slot_start, received_at in reports.iterator(chunk_size=CHUNK):
        if device_id != current:
            current, latest, slots, flagged = device_id, None, set(), False
        if not flagged and latest is not None and slot_start <= latest - back and slot_start in slots:
            found.append(
                {
                    "device_uuid": uuid,
                    "report_id": report_id,
                    "slot_start": rfc3339(slot_start),
                    "latest_slot_before": rfc3339(latest),
                    "received_at": rfc3339(received_at),
                }
            )
            flagged = True
        slots.add(slot_start)
        latest = slot_start if latest is None else max(latest, slot_start)
    if not found:
        return None
    minutes = int(back.total_seconds() // 60)
    return {
        "summary": f"{len(found)} device(s) reported a slot again {minutes}+ minutes before their latest: "
        "their clock ran backwards, or a copy of them runs elsewhere",
        "evidence": {"devices": found[:20], "count": len(found), "threshold_minutes": minutes},
    }


def project_flags(project: Project, day: date) -> dict[str, dict[str, Any]]:
    """The flags of ``project`` for ``day``: ``{kind: {"summary", "evidence"}}``."""
    limits = thresholds()
    start, end = _day_bounds(day)
    contacts = [(at, uuid, address) for at, uuid, address in _contacts(project, start, end) if address]
    flags = {
        "many_networks": _many_networks(project, contacts, limits["networks_per_day"]),
        "foreign_domains": _foreign_domains(project, start, end, limits["domains_per_day"]),
        "far_networks": _far_networks(contacts, timedelta(minutes=limits["hop_minutes"])),
        "clock_rollback": _clock_rollback(project, start, end, timedelta(minutes=limits["rollback_minutes"])),
    }
    return {kind: flag for kind, flag in flags.items() if flag is not None}


def _active_projects(start: datetime, end: datetime) -> list[int]:
    decided = Decision.objects.filter(created_at__gte=start, created_at__lt=end).values_list("project_id", flat=True)
    reported = UsageReport.objects.filter(received_at__gte=start, received_at__lt=end).values_list(
        "device__project_id", flat=True
    )
    return sorted(set(decided.distinct()) | set(reported.distinct()))


def detect_anomalies(*, now: datetime) -> dict[str, Any]:
    """The job: flags of today and yesterday for every project with contacts; one email and one
    ``project.anomaly`` event per project and day with flags (claimed on ``AnomalyNotice``)."""
    flagged = notified = 0
    today = now.astimezone(UTC).date()
    for day in (today - timedelta(days=1), today):
        start, end = _day_bounds(day)
        for project_id in _active_projects(start, min(end, now)):
            project = Project.objects.select_related("organization").get(pk=project_id)
            flags = project_flags(project, day)
            for kind, flag in flags.items():
                ProjectAnomaly.objects.update_or_create(
                    project=project,
                    day=day,
                    kind=kind,
                    defaults={"summary": flag["summary"][:500], "evidence": flag["evidence"], "detected_at": now},
                )
                flagged += 1
            if flags and _notify(project, day, flags, now=now):
                notified += 1
    return {"job": "detect_anomalies", "flags": flagged, "notified": notified}


def _notify(project: Project, day: date, flags: dict[str, dict[str, Any]], *, now: datetime) -> bool:
    """Email and event, once per project and day: the claim commits with them or not at all."""
    try:
        with transaction.atomic():
            AnomalyNotice.objects.create(project=project, day=day, sent_at=now)
            data = {
                "organization": project.organization_id,
                "project": {"id": str(project.pk), "name": project.name},
                "day": day.isoformat(),
                "flags": [{"kind": k, "summary": f["summary"], "evidence": f["evidence"]} for k, f in flags.items()],
            }
            emit("project.anomaly", data, organization=project.organization_id, now=now)
            to = recipients_of(project.organization_id)
            if to:
                _send("anomaly_alert", {"project": project, "day": day, "flags": flags}, to)
    except IntegrityError:
        return False
    return True

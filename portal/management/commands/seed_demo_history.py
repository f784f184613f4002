"""python manage.py seed_demo_history: a month of realistic demo history, through the services.

Called by ``seed_demo`` (by name: the licenses app sits below devices and usage). Devices
authorize and report through ``devices.services.authorize`` and ``usage.services.record_usage``
with ``now`` set in the past and a client address, exactly as the device API would have
recorded them (``portal.demo``), and the jobs then run once (expiry, the rollups, the anomaly
flags), so the statistics, concurrency, refusals, devices and insight pages show a month the
moment ``make run`` starts.

About 650 service calls, one transaction per project (side by side on PostgreSQL): acme-web's browsers fill the 30 seats + 3
grace and a 34th is refused (six idle for over a month, to release), document viewers on the
per_domain item; acme-warehouse's phones scan every working day; acme-documents' scanners count
pages; globex-labels' 12 desktops share 10 concurrent seats (overuse on Mondays, then the
ceiling); globex-backend's third server is refused; acme-partner-web's key is shared (the four
anomaly flags). Deterministic (a fixed random seed) and idempotent: a project that has devices
is left as it is, so a second run adds nothing."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from devices.models import Device
from licenses.models import Project
from portal.demo import fleet, sharing
from portal.demo.history import DAYS, History
from usage.anomalies import detect_anomalies
from usage.jobs import expire_idle_devices, rollup_concurrency, rollup_usage

SCENARIOS: dict[str, Callable[[History, Project], None]] = {
    "acme-web": fleet.web,
    "acme-warehouse": fleet.warehouse,
    "acme-documents": fleet.documents,
    "globex-labels": fleet.labels,
    "globex-backend": fleet.backend,
    sharing.PROJECT: sharing.partner_web,
}
DEMO_PROJECTS = tuple(SCENARIOS)


class Command(BaseCommand):
    help = "Add a month of demo devices, usage and refusals through the services (idempotent)."

    def handle(self, *args, **options):
        now = timezone.now()
        projects = {p.name: p for p in Project.objects.filter(name__in=DEMO_PROJECTS)}
        missing = sorted(set(DEMO_PROJECTS) - set(projects))
        if missing:
            self.stdout.write(f"Demo history: run seed_demo first ({', '.join(missing)} missing).")
            return
        seeded = set(Device.objects.filter(project__in=projects.values()).values_list("project__name", flat=True))
        todo = [name for name in DEMO_PROJECTS if name not in seeded]
        if not todo:
            self.stdout.write("Demo history already present: nothing changed.")
            return
        started = timezone.now()
        histories = run_scenarios([(name, projects[name]) for name in todo], now=now)
        expire_idle_devices(now=now)
        rollup_concurrency(now=now)
        rollup_usage(now=now)
        detect_anomalies(now=now)
        seconds = (timezone.now() - started).total_seconds()
        calls, refusals = sum(h.calls for h in histories), sum(h.refusals for h in histories)
        self.stdout.write(
            f"Demo history: {calls:,} device requests over {DAYS} days ({refusals:,} refused) "
            f"for {len(todo)} project(s), rolled up, in {seconds:.1f} s."
        )


def run_scenario(name: str, project: Project, *, now: datetime) -> History:
    """One project's month, in one transaction (each service's own become savepoints: one commit
    per project instead of one per request), with its own seeded random numbers, so the history
    is the same whichever projects run and in which order."""
    h = History(now, random.Random(f"216998-{name}"))
    try:
        with transaction.atomic():
            SCENARIOS[name](h, project)
    finally:
        if threading.current_thread() is not threading.main_thread():
            connection.close()  # a worker thread's own connection
    return h


def run_scenarios(todo: list[tuple[str, Project]], *, now: datetime) -> list[History]:
    """The projects side by side on PostgreSQL (a connection each: the time is round trips, not
    CPU, and the projects share no rows), one after another on SQLite (one writer at a time) or
    inside a caller's transaction (a test's: other connections would not see its rows)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block or len(todo) < 2:
        return [run_scenario(name, project, now=now) for name, project in todo]
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda job: run_scenario(job[0], job[1], now=now), todo))

"""``python manage.py run_job NAME [--now RFC3339]``: run one scheduled job once, synchronously,
as at that time (SPEC section 8), and print a one-line JSON summary of what it changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from licenses.clock import within_range
from usage.jobs import JOBS


def parse_rfc3339(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as e:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time (e.g. 2026-11-27T17:24:00Z)") from e
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset (end it with Z or +00:00)")
    within_range(parsed.replace(tzinfo=UTC))  # before the shift to UTC, which could overflow
    return within_range(parsed.astimezone(UTC))


class Command(BaseCommand):
    help = "Run one scheduled job once, as at --now (default: the current time). Jobs: " + ", ".join(JOBS)

    def add_arguments(self, parser):
        parser.add_argument("name", help="one of: " + ", ".join(JOBS))
        parser.add_argument("--now", help="RFC 3339 date-time to run as (its changes persist)")

    def handle(self, *args, name, now=None, **options):
        if name not in JOBS:
            raise CommandError(f"unknown job {name!r}; jobs are: {', '.join(JOBS)}")
        try:
            at = parse_rfc3339(now) if now else timezone.now()
        except ValueError as e:
            raise CommandError(f"--now: {e}") from e
        summary = JOBS[name](now=at)
        self.stdout.write(json.dumps(summary, default=str, separators=(",", ":")))

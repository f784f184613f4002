"""``python manage.py what_if --license-key KEY --item ID --set quantity=8 --from DATE --to DATE``:
replay a past window of one item with a changed policy and print one JSON object (docs/insight.md):
``refused`` (what the changed policy would have refused), ``actual_refused``, ``per_rule``,
``per_day``; for a scan item ``--set dedup_interval_ms=N`` deduplicates the stored sightings again
(``barcode_scans`` next to ``actual_barcode_scans``). ``--recommend`` adds the right quantity. Bad
input exits non-zero naming the field."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from licenses.cli import KeyOptionMixin
from licenses.models import Project
from usage.exports import parse_bound
from usage.insight.quantity import right_quantity
from usage.replay import PolicyError, check_window, parse_changes, what_if


class Command(KeyOptionMixin, BaseCommand):  # --license-key -abc works too
    help = "What a changed policy would have refused over a past window of one item (JSON on standard output)."

    def add_arguments(self, parser):
        parser.add_argument("--license-key", required=True, help="the project's license key")
        parser.add_argument("--item", required=True, help="the item's id (in the project)")
        parser.add_argument(
            "--set", dest="changes", action="append", default=[], metavar="FIELD=VALUE", help="a changed policy field"
        )
        parser.add_argument("--from", dest="start", required=True, help="inclusive: a date or an RFC 3339 date-time")
        parser.add_argument("--to", dest="end", required=True, help="exclusive: a date or an RFC 3339 date-time")
        parser.add_argument(
            "--recommend", action="store_true", help="add the right quantity (seat, server, concurrent)"
        )

    def handle(self, *args, license_key, item, changes, start, end, recommend=False, **options):
        bounds = {}
        for option, value in (("--from", start), ("--to", end)):
            try:
                bounds[option] = parse_bound(value)
            except ValueError as e:
                raise CommandError(f"{option}: {e}") from e
        project = Project.objects.filter(license_key=license_key).first()
        if project is None:
            raise CommandError("--license-key: no project has this license key")
        found = project.items.select_related("license").filter(pk=int(item)).first() if item.isdigit() else None
        if found is None:
            raise CommandError(f"--item: the project has no item {item!r}")
        for pair in changes:
            if "=" not in pair:
                raise CommandError(f"--set: {pair!r} is not FIELD=VALUE")
        try:
            check_window(bounds["--from"], bounds["--to"])
            parsed = parse_changes(found, changes)
            result = what_if(found, start=bounds["--from"], end=bounds["--to"], changes=parsed)
        except PolicyError as e:
            name = {"to": "--to", "item": "--item"}.get(e.field, f"--set {e.field}")
            raise CommandError(f"{name}: {e.reason}") from e
        if recommend:
            result["right_quantity"] = right_quantity(found, start=bounds["--from"], end=bounds["--to"])
        self.stdout.write(json.dumps(result, sort_keys=True))

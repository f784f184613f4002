"""``python manage.py repair_seat_counts [--check]``: recount every seat item's active devices
into its seat counter (``devices.seats``) and every project's devices by state into its tally
(``devices.tally``), and print a one-line JSON summary of what was wrong. With ``--check``
nothing is changed and the command exits 1 when a counter or a tally is wrong."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from devices import tally
from devices.seats import recount


class Command(BaseCommand):
    help = "Recount the active devices of every per_client_device and per_server item into its seat counter, and every project's devices by state into its tally."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="only report; exit 1 if a counter is wrong")

    def handle(self, *args, check=False, **options):
        wrong = recount(fix=not check)
        tallies = tally.recount(fix=not check)
        summary = {
            "command": "repair_seat_counts",
            "checked_only": check,
            "wrong": [{"item": item_id, "counter": was, "active_devices": live} for item_id, was, live in wrong],
            "wrong_tallies": [
                {"project": project_id, "state": state, "server": server, "tally": was, "devices": live}
                for project_id, state, server, was, live in tallies
            ],
        }
        self.stdout.write(json.dumps(summary, separators=(",", ":")))
        if check and (wrong or tallies):
            raise CommandError(
                f"{len(wrong)} seat counter(s) differ from the active devices, "
                f"{len(tallies)} device tally count(s) from the devices"
            )

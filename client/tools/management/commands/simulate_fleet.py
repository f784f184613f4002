"""python manage.py simulate_fleet: a fleet of simulated SDK clients against a running server.

    python manage.py simulate_fleet --base-url http://127.0.0.1:8000 --project acme-warehouse \\
        --devices 50 --slots 480 --speed 120 --offline-fraction 0.2 --error-rate 0.05 --release

Prints a progress line on long runs and, at the end, what the devices sent, what the server said
it counted (the sum of ``counted`` in its answers) and, when the server uses this database, what
its database holds. Exits 1 when they disagree (every report must count exactly once)."""

from __future__ import annotations

import json
import logging

from django.core.management.base import BaseCommand, CommandError

from client.tools.simulator import (
    DEFAULT_PROFILES,
    MAX_SLOTS,
    Fleet,
    FleetConfig,
    parse_profile,
    profiles_from_items,
    server_view,
)
from licenses.cli import KeyOptionMixin


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


class Command(KeyOptionMixin, BaseCommand):  # --license-key -abc works too
    help = "Simulate N SDK devices (authorize, scan, report per slot, offline, retries, release) against a server."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the server (default %(default)s)")
        key = parser.add_mutually_exclusive_group(required=True)
        key.add_argument("--license-key", help="the project's license key")
        key.add_argument("--project", help="a project name in this database (its key is looked up)")
        parser.add_argument("--devices", type=int, default=10)
        parser.add_argument("--slots", type=int, default=20, help=f"3-minute slots to simulate (at most {MAX_SLOTS})")
        parser.add_argument("--speed", type=float, default=60.0, help="time compression (0: as fast as possible)")
        parser.add_argument("--options", default="", help=f"comma-separated options: {', '.join(DEFAULT_PROFILES)}")
        parser.add_argument(
            "--profile", action="append", default=[],
            help="a device profile, repeatable: product=dbr,client_type=web,edition=javascript,"
            "origin=https://app.example.com,option=per_client_device,modules=core+ocr",
        )  # fmt: skip
        parser.add_argument("--offline-fraction", type=_fraction, default=0.2)
        parser.add_argument("--error-rate", type=_fraction, default=0.0, help="injected network errors per request")
        parser.add_argument("--raw-fraction", type=_fraction, default=0.5, help="devices sending raw sightings")
        parser.add_argument("--release", action="store_true", help="every device releases its seat at the end")
        parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--run-id", default="", help="device uuids are sim-<run-id>-NNNNN (default: random)")
        parser.add_argument("--progress-every", type=float, default=10.0, help="seconds between progress lines")
        parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the server's /healthz first")
        parser.add_argument("--json", action="store_true", help="print the summary as one JSON object at the end")
        parser.add_argument("--no-check-db", action="store_true", help="do not read the server's view from this DB")

    def handle(self, *args, **opts):
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
        license_key, project = opts["license_key"], None
        if opts["project"]:
            from licenses.models import Project

            project = Project.objects.filter(name=opts["project"]).first()
            if project is None:
                raise CommandError(f"no project named {opts['project']!r} in this database")
            license_key = project.license_key
        try:
            profiles = [parse_profile(p) for p in opts["profile"]]
            for option in filter(None, (o.strip() for o in opts["options"].split(","))):
                if option not in DEFAULT_PROFILES:
                    raise ValueError(f"unknown option {option!r}: one of {', '.join(DEFAULT_PROFILES)}")
                profiles.append(DEFAULT_PROFILES[option])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not profiles:
            if project is None and not opts["no_check_db"]:
                from licenses.models import Project

                project = Project.objects.filter(license_key=license_key).first()
            if project is None:
                raise CommandError("give --options or --profile (the project is not in this database)")
            profiles = profiles_from_items(project.items_in_order())
            if not profiles:
                raise CommandError(f"project {project.name!r} has no items")
        config = FleetConfig(
            base_url=opts["base_url"], license_key=license_key, profiles=profiles, devices=opts["devices"],
            slots=opts["slots"], speed=opts["speed"], offline_fraction=opts["offline_fraction"],
            error_rate=opts["error_rate"], raw_fraction=opts["raw_fraction"], release=opts["release"],
            concurrency=opts["concurrency"], seed=opts["seed"], run_id=opts["run_id"],
            progress_every_s=opts["progress_every"],
        )  # fmt: skip
        if opts["wait"]:
            self.wait_for(config.base_url, opts["wait"])
        try:
            fleet = Fleet(config, out=lambda line: self.stdout.write(line))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        summary = fleet.run()
        server = None if opts["no_check_db"] else server_view(license_key=license_key, prefix=fleet.prefix)
        summary["server"] = server
        problems = self.problems(summary, release=config.release)
        summary["ok"] = not problems
        self.report(summary, problems)
        if opts["json"]:
            self.stdout.write(json.dumps(summary, sort_keys=True))
        if problems:
            raise CommandError("sent and counted disagree: " + "; ".join(problems))

    def wait_for(self, base_url: str, seconds: float) -> None:
        import time

        import httpx

        deadline = time.monotonic() + seconds
        while True:
            try:
                if httpx.get(base_url.rstrip("/") + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise CommandError(f"{base_url} did not answer /healthz within {seconds:g} s")
            time.sleep(0.5)

    @staticmethod
    def problems(summary: dict, *, release: bool) -> list[str]:
        sent, counted, server = summary["sent"], summary["counted"], summary["server"]
        problems = []
        if sent != counted:
            problems.append(f"sent {sent} != counted {counted}")
        if server is not None:
            view = {k: server[k] for k in ("reports", "barcode_scans", "pages")}
            if view != counted:
                problems.append(f"server database {view} != counted {counted}")
            if release and server["released"] != server["devices"]:
                problems.append(f"{server['devices'] - server['released']} devices not released")
        if summary["rejected"]:
            problems.append(f"{len(summary['rejected'])} reports refused: {summary['rejected'][:3]}")
        if summary["unsent_reports"]:
            problems.append(f"{summary['unsent_reports']} reports never reached the server")
        return problems

    def report(self, summary: dict, problems: list[str]) -> None:
        def line(label, totals, note=""):
            pages = json.dumps(totals["pages"], sort_keys=True)
            self.stdout.write(
                f"{label:<9} reports {totals['reports']:>7}  barcode_scans {totals['barcode_scans']:>9}  pages {pages}{note}"
            )

        line("sent:", summary["sent"], "  (what the devices reported, deduplicated by the SDK's 3-second rule)")
        line("counted:", summary["counted"], '  (sum of "counted" in the server\'s answers)')
        if summary["server"] is not None:
            line("server:", summary["server"], "  (the server's database: usage counts of these devices)")
        else:
            self.stdout.write("server:   (not in this database: compare with the export or the portal)")
        client = summary["client"]
        self.stdout.write(
            f"requests {client.get('requests', 0)}, retries {client.get('retries', 0)} (injected errors "
            f"{client.get('injected_errors', 0)}, answers lost {client.get('lost_responses', 0)}, answered duplicate "
            f"{summary['duplicates_answered']}, rate limited {client.get('rate_limited', 0)}), offline flushes "
            f"{summary['offline_flushes']} ({summary['offline_flushed_reports']} reports), authorizations "
            f"{summary['authorizations']}, releases {summary['releases']}, refusals {summary['refusals'] or 'none'}, "
            f"{summary['elapsed_s']} s"
        )
        if problems:
            self.stderr.write("MISMATCH: " + "; ".join(problems))
        else:
            self.stdout.write("OK: every report sent was counted exactly once")

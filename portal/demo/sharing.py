"""acme-partner-web, the demo's key-sharing scenario (docs/insight.md, key sharing and clones):
Acme's partner portal, whose license key (a project with no allowed domains) was copied into
other companies' shops. For a month only Acme's own browsers use it; then, within one hour,

- 30 browsers on other sites authorize from 30 client networks (/24) and 8 registrable
  domains: ``many_networks`` and ``foreign_domains``;
- one of Acme's browsers is copied: the copy reports from a network far from Acme's office
  minutes after the original did (``far_networks``), and reports again a slot the original
  had reported over half an hour before (``clock_rollback``, DLS's clone check).

Every request goes through the services from its own client address, as through the API, and
``detect_anomalies`` then raises the four flags for this project only."""

from __future__ import annotations

from datetime import datetime, timedelta

from licenses.clock import SLOT, slot_start_of
from licenses.models import Project
from portal.demo.fleet import ACME_OFFICE, BROWSERS
from portal.demo.history import DAYS, Client, History

PROJECT = "acme-partner-web"
FOREIGN_SITES = [
    "https://shop.brightcart.example",
    "https://www.parcelpoint.example",
    "https://scan.quickstock.example",
    "https://app.labelhub.example",
    "https://m.retailnest.example",
    "https://inventory.boxfleet.example",
    "https://www.tagtrail.example",
    "https://pos.shelfwise.example",
]
LEAK_MINUTES = 50  # the leak's burst fits in one UTC day (the flags are per project and day)


def burst_end(now: datetime) -> datetime:
    """When the burst ends: 5 minutes ago, or before midnight when today is too young to hold it
    (detect_anomalies looks at today and yesterday)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if now - midnight >= timedelta(minutes=LEAK_MINUTES + 10):
        return now - timedelta(minutes=5)
    return midnight - timedelta(minutes=5)


def partner_web(h: History, project: Project) -> None:
    partners = []
    for k in range(5):
        platform = list(BROWSERS)[k % 4]
        fields = {"product": "dbr", "edition": "javascript", "client_type": "web", "platform": platform}
        fields |= {"origin": "https://partners.acme.example", "device_name": f"Partner desk {k + 1}"}
        partners.append(Client(f"partner-{k + 1}", fields, f"{ACME_OFFICE}{100 + k}", BROWSERS[platform]))
    end = burst_end(h.now)
    for k, client in enumerate(partners):  # a month of Acme's own use
        for day in range(DAYS - k, 0, -h.rng.randint(4, 8)):
            at = h.day_slot(day, 9 + k, 3 * h.rng.randint(0, 19))
            if at < end - timedelta(minutes=LEAK_MINUTES):
                h.authorize(project, client, at)
    start = end - timedelta(minutes=LEAK_MINUTES)
    for k in range(30):  # the key on other sites: 30 networks, 8 domains, within the hour
        site = FOREIGN_SITES[k % len(FOREIGN_SITES)]
        platform = list(BROWSERS)[k % 4]
        fields = {"product": "dbr", "edition": "javascript", "client_type": "web", "origin": site, "platform": platform}
        stranger = Client(f"shared-{k + 1:02d}", fields, f"198.{18 + k % 2}.{k // 2 + 1}.{10 + k}", BROWSERS[platform])
        h.authorize(project, stranger, start + timedelta(seconds=90 * k + 7))
    original = partners[1]
    copy = Client(original.uuid, original.fields, "198.19.77.20", original.agent)
    first = slot_start_of(start) + SLOT  # the original's slot, then its copy's a slot later
    h.authorize(project, original, first + timedelta(seconds=3))
    h.report(project, original, first)
    h.authorize(project, copy, first + SLOT + timedelta(seconds=20))  # far away, 3 minutes on
    h.report(project, copy, first + SLOT)
    later = first + 12 * SLOT  # 36 minutes on, the original again
    h.report(project, original, later)
    # The copy, its clock behind, reports the original's first slot again.
    h.report(project, copy, first, at=later + SLOT + timedelta(seconds=30))

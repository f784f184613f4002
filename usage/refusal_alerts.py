"""Failed-authorization alerts, part of ``send_usage_alerts`` (SPEC section 8): per project, when
the share of refused authorizations over the last hour reaches 10, 20, 40, 60, 80 or 100 % (with
at least 20 authorizations in that hour, so that one refused test device pages no one), the
organization's alert recipients get one email per run naming the top rules and their counts.
Each threshold is claimed once per project per UTC day (``RefusalAlertSent``), in the transaction
that sends the email, like the usage thresholds."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q

from devices.models import Decision
from licenses.models import Organization, Project
from usage.models import RefusalAlertSent
from usage.sql import claim

logger = logging.getLogger(__name__)

REFUSAL_THRESHOLDS = (10, 20, 40, 60, 80, 100)
MIN_AUTHORIZATIONS = 20
WINDOW = timedelta(hours=1)
TOP_RULES = 5


def refusal_shares(*, now: datetime) -> list[dict]:
    """Projects with at least MIN_AUTHORIZATIONS authorizations in (now - 1 h, now]: their
    counts and the thresholds their refused share reached (exact integers)."""
    rows = (
        Decision.objects.filter(endpoint=Decision.AUTHORIZE, created_at__gt=now - WINDOW, created_at__lte=now)
        .values("project_id")
        .annotate(total=Count("id"), refused=Count("id", filter=Q(allowed=False)))
        .filter(total__gte=MIN_AUTHORIZATIONS, refused__gt=0)
        .order_by("project_id")
    )
    shares = []
    for row in rows:
        reached = [t for t in REFUSAL_THRESHOLDS if row["refused"] * 100 >= row["total"] * t]
        if reached:
            shares.append({**row, "reached": reached})
    return shares


def top_rules(project_id: int, *, now: datetime) -> list[dict[str, Any]]:
    return [
        dict(row)
        for row in Decision.objects.filter(
            project_id=project_id,
            endpoint=Decision.AUTHORIZE,
            allowed=False,
            created_at__gt=now - WINDOW,
            created_at__lte=now,
        )
        .values("rule", "code")
        .annotate(n=Count("id"))
        .order_by("-n", "rule")[:TOP_RULES]
    ]


def send_refusal_alerts(*, now: datetime) -> dict:
    from usage.notices import _send, recipients_of

    shares = refusal_shares(now=now)
    projects = Project.objects.select_related("organization").in_bulk({s["project_id"] for s in shares})
    by_org: dict[str, list[dict]] = defaultdict(list)
    for share in shares:
        by_org[projects[share["project_id"]].organization_id].append(share)
    emails = alerts = unsent = failed = 0
    day = now.date()
    for org_id, org_shares in sorted(by_org.items()):
        try:
            with transaction.atomic():
                rows = [(s["project_id"], t, day, now) for s in org_shares for t in s["reached"]]
                claimed = set(claim(RefusalAlertSent, ["project_id", "threshold", "day", "sent_at"],
                                    ["project_id", "threshold", "day"], rows))  # fmt: skip
                lines = []
                for s in org_shares:
                    mine = [t for t in s["reached"] if (s["project_id"], t, day) in claimed]
                    if not mine:
                        continue
                    lines.append(
                        {
                            "project": projects[s["project_id"]],
                            "threshold": max(mine),
                            "refused": s["refused"],
                            "total": s["total"],
                            "percent": s["refused"] * 100 // s["total"],
                            "rules": top_rules(s["project_id"], now=now),
                        }
                    )
                if not lines:
                    continue
                alerts += len(claimed)
                to = recipients_of(org_id)
                if not to:
                    unsent += 1
                    logger.warning("refusal alert for organization %s: no recipient", org_id)
                    continue
                organization = Organization.objects.get(pk=org_id)
                _send("refusal_alert", {"organization": organization, "lines": lines, "now": now}, to)
                emails += 1
        except Exception:
            failed += 1  # the claims rolled back: the next run retries
            logger.exception("refusal alert for organization %s failed", org_id)
    return {"emails": emails, "alerts": alerts, "no_recipient": unsent, "failed": failed}

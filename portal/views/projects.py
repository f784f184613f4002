"""Customer portal pages of the licenses app (licenses, projects, alert recipients) and the staff
dashboard. Thin views: the access helper (portal.access), reads from portal.summaries, writes
through licenses.services. Only these entry points read the clock."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import BigIntegerField, Count, F, Max, Prefetch, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from devices import quota
from devices.models import OVERUSE_SPENT, Decision, QuotaCounter, holding_seat_q
from licenses import rules
from licenses.models import (
    AlertRecipient,
    AuditLog,
    License,
    LicenseItem,
    Membership,
    Organization,
    Project,
    usable_q,
)
from portal.access import can_change, check_access, get_organization_for, get_project_for, org_roles
from portal.bulk import open_batches
from portal.display import shown
from portal.summaries import WARN_PERCENT, days_left, license_state, metric_label, summarize_items


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The portal home: every license of the user's organizations with its items and meters."""
    roles = org_roles(request)
    if not roles:
        if request.user.is_staff:
            return redirect("portal:staff_dashboard")
        return render(request, "portal/no_organization.html", status=200)
    return render(request, "portal/home.html", _licenses_context(roles))


@require_GET
@login_required
def organization_home(request: HttpRequest, org_id: str) -> HttpResponse:
    """One organization's licenses, as its members see them (staff: read-only, with a banner)."""
    organization = get_organization_for(request, org_id)
    context = _licenses_context({organization.pk: check_access(request, organization.pk)})
    context["organization"] = organization
    return render(request, "portal/home.html", context)


def _licenses_context(roles: dict[str, str]) -> dict:
    now = timezone.now()
    organizations = list(Organization.objects.filter(pk__in=list(roles)))
    licenses = list(
        License.objects.filter(organization_id__in=list(roles))
        .order_by("organization_id", "-expires_at", "license_id")
        .select_related("renewal_of")
        .prefetch_related(
            Prefetch("items", queryset=LicenseItem.objects.select_related("project")),
            Prefetch("renewals", queryset=License.objects.order_by("starts_at")),
        )
    )
    items = [item for lic in licenses for item in lic.items.all()]
    summaries = {s.item.pk: s for s in summarize_items(items, now=now)}
    projects = Project.objects.filter(organization_id__in=list(roles)).annotate(n_items=Count("items"))
    by_org: dict[str, dict] = {
        o.pk: {"organization": o, "role": roles[o.pk], "licenses": [], "projects": []} for o in organizations
    }
    for p in projects:
        by_org[p.organization_id]["projects"].append(p)
    for lic in licenses:
        state = license_state(lic, now)
        by_org[lic.organization_id]["licenses"].append(
            {
                "license": lic,
                "state": state,
                "days_left": days_left(lic.expires_at, now),
                "days_to_start": days_left(lic.starts_at, now) + 1 if state == "not_started" else None,
                # A renewal that has not started yet is not a problem: it takes over on its day.
                "pending_renewal": state == "not_started" and lic.renewal_of_id is not None,
                "renewed_by": [r for r in lic.renewals.all() if r.status == License.ACTIVE],
                "summaries": [summaries[i.pk] for i in lic.items.all()],
            }
        )
    return {"orgs": list(by_org.values()), "now": now}


REFUSAL_PANEL_DAYS = 7
STAFF_ORGANIZATIONS = 200
REFUSAL_PANEL_GROUPS = 5


def _reorder_choices(ids: list[str]) -> list[dict]:
    """For each position, the full new order that moving the item up or down would give."""
    rows = []
    for i, item_id in enumerate(ids):
        up = down = None
        if i > 0:
            up = ids[: i - 1] + [item_id, ids[i - 1]] + ids[i + 1 :]
        if i < len(ids) - 1:
            down = ids[:i] + [ids[i + 1], item_id] + ids[i + 2 :]
        rows.append({"up": up, "down": down})
    return rows


@require_GET
@login_required
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_project_for(request, pk)
    now = timezone.now()
    items = list(project.items_in_order())
    summaries = summarize_items(items, now=now)
    moves = _reorder_choices([str(i.pk) for i in items])
    rows = [
        {
            "summary": s,
            "position": n + 1,
            "state": license_state(s.item.license, now),
            "days_left": days_left(s.item.license.expires_at, now),
            "move": m,
        }
        for n, (s, m) in enumerate(zip(summaries, moves, strict=True))
    ]
    from portal.refusals import refusal_groups
    from portal.snippets import project_snippets

    owner = can_change(request, project.organization_id)
    context = {
        "project": project,
        "rows": rows,
        "can_change": owner,
        "now": now,
        "undoable": list(open_batches(project, now=now)[:5]) if owner else [],  # any owner may undo (portal.bulk)
        "has_concurrency": any(i.option == rules.PER_CONCURRENT_DEVICE for i in items),
        "refusal_groups": refusal_groups(
            project, items, since=now - timedelta(days=REFUSAL_PANEL_DAYS), until=now + timedelta(seconds=1), now=now
        )[:REFUSAL_PANEL_GROUPS],
        "refusal_days": REFUSAL_PANEL_DAYS,
        "snippets": project_snippets(project, items),
        "focus": request.GET.get("focus", ""),
    }
    return render(request, "portal/project_detail.html", context)


@require_POST
@login_required
def project_reorder(request: HttpRequest, pk: int) -> HttpResponse:
    """Set the consumption order (owners only). The body names every item of the project once."""
    from licenses.services import reorder_items

    project = get_project_for(request, pk, change=True)
    item_ids = request.POST.getlist("item_ids")
    own = {str(i) for i in project.items.values_list("pk", flat=True)}
    if len(item_ids) != len(own) or set(item_ids) != own:
        return HttpResponseBadRequest("item_ids must list every item of the project exactly once")
    reorder_items(project=project, item_ids=item_ids, actor=request.user, now=timezone.now())
    messages.success(request, "Consumption order saved.")
    # Keep the keyboard where it was: the page focuses the same button of the moved item.
    moved, direction = request.POST.get("moved", ""), request.POST.get("direction", "")
    focus = f"?focus=move-{moved}-{direction}" if moved.isdigit() and direction in ("up", "down") else ""
    return redirect(reverse("portal:project", args=[project.pk]) + (focus or "#items"))


class AlertRecipientForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if AlertRecipient.objects.filter(organization=self.organization, email__iexact=email).exists():
            raise forms.ValidationError("This address already receives the alerts.")
        return email


@require_http_methods(["GET", "POST"])
@login_required
def alert_recipients(request: HttpRequest, org_id: str) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=request.method == "POST")
    form = AlertRecipientForm(request.POST or None, organization=organization)
    if request.method == "POST" and form.is_valid():
        from licenses.services import record_audit

        recipient = AlertRecipient.objects.create(organization=organization, email=form.cleaned_data["email"])
        record_audit(
            actor=request.user,
            action="alert_recipient_add",
            obj=recipient,
            before=None,
            after={"email": recipient.email},
            organization=organization,
        )
        messages.success(request, f"{recipient.email} will receive usage alerts and renewal reminders.")
        return redirect("portal:alert_recipients", org_id=organization.pk)
    owners = (
        Membership.objects.filter(organization=organization, role=Membership.OWNER)
        .select_related("user")
        .order_by("user__username")
    )
    context = {
        "organization": organization,
        "recipients": organization.alert_recipients.order_by("email"),
        "owners": owners,
        "form": form,
        "can_change": can_change(request, organization.pk),
    }
    return render(request, "portal/alert_recipients.html", context, status=400 if form.errors else 200)


@require_POST
@login_required
def alert_recipient_delete(request: HttpRequest, org_id: str, pk: int) -> HttpResponse:
    from licenses.services import record_audit

    organization = get_organization_for(request, org_id, change=True)
    recipient = get_object_or_404(AlertRecipient, pk=pk, organization=organization)
    record_audit(
        actor=request.user,
        action="alert_recipient_remove",
        obj=recipient,
        before={"email": recipient.email},
        after=None,
        organization=organization,
    )
    recipient.delete()
    messages.success(request, f"{recipient.email} removed from the alert recipients.")
    return redirect("portal:alert_recipients", org_id=organization.pk)


# ---- staff dashboard -------------------------------------------------------------------------


def admin_url(name: str, *args, query: str = "") -> str:
    """A link into the admin, or "" while that model is not registered there."""
    try:
        return reverse(name, args=args) + query
    except NoReverseMatch:
        return ""


def _near_quota(now) -> list[dict]:
    """Quota and seat items of usable licenses at or above WARN_PERCENT, highest first."""
    live = usable_q(now, via="item__license__")
    # In 64 bits: a quantity may be up to 2,147,483,647, and times 80 it overflows an integer.
    near = Q(metric="barcode_scans", item__option=rules.PER_BARCODE_SCAN) & Q(
        total__gte=(Cast("item__quantity", BigIntegerField()) * WARN_PERCENT + 99) / 100
    )
    for module in rules.PAGE_MODULES:
        limit = Cast(KeyTextTransform(module, "item__quantities"), BigIntegerField())
        near |= Q(metric=f"pages_{module}", item__option=rules.PER_PAGE) & Q(
            total__gte=(limit * WARN_PERCENT + 99) / 100
        )
    rows: list[dict[str, Any]] = []
    # Totals: each counter with its shares (devices.quota).
    for counter in (
        quota.with_totals().filter(live, near).select_related("item__license__organization", "item__project")[:200]
    ):
        item = counter.item
        quantity = (
            item.quantity if counter.metric == "barcode_scans" else (item.quantities or {}).get(counter.metric[6:])
        )
        if quantity:
            rows.append({"item": item, "what": metric_label(counter.metric), "used": counter.total, "limit": quantity})
    seat_items = (
        LicenseItem.objects.filter(
            usable_q(now, via="license__"), option__in=[rules.PER_CLIENT_DEVICE, rules.PER_SERVER]
        )
        .annotate(active=Count("devices", filter=holding_seat_q(now, via="devices__")))
        .filter(active__gte=(Cast("quantity", BigIntegerField()) * WARN_PERCENT + 99) / 100)
        .select_related("license__organization", "project")[:200]
    )
    for item in seat_items:
        rows.append({"item": item, "what": "Active seats", "used": item.active, "limit": item.quantity})
    for row in rows:
        row["percent"] = 100.0 * row["used"] / row["limit"]
        row["admin_url"] = admin_url("admin:licenses_license_change", row["item"].license_id)
        row["add_quota_url"] = admin_url("admin:licenses_license_add_quota", row["item"].license_id)
    rows.sort(key=lambda r: -r["percent"])
    return rows


@require_GET
@login_required
def staff_dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("Staff only")
    now = timezone.now()
    expiring = list(
        License.objects.filter(status=License.ACTIVE, expires_at__gt=now, expires_at__lte=now + timedelta(days=30))
        # A renewal covers it: not "expiring" any more (its items continue on the same key).
        .exclude(renewals__status=License.ACTIVE, renewals__expires_at__gt=F("expires_at"))
        .select_related("organization")
        .order_by("expires_at")[:200]
    )
    for lic in expiring:
        shown(
            lic,
            days_left=days_left(lic.expires_at, now),
            admin_url=admin_url("admin:licenses_license_change", lic.pk),
            renew_url=admin_url("admin:licenses_license_renew", lic.pk),
        )
    overuse = list(
        QuotaCounter.objects.filter(metric=OVERUSE_SPENT, used__gt=0)
        .select_related("item__license__organization", "item__project")
        .order_by("-used")[:100]
    )
    for counter in overuse:
        budget = counter.item.effective_overuse_budget
        shown(
            counter,
            budget=budget,
            percent=100.0 * counter.used / budget if budget else 100.0,
            admin_url=admin_url("admin:licenses_license_change", counter.item.license_id),
        )
    refusals: list[dict[str, Any]] = [
        dict(row)
        for row in Decision.objects.filter(allowed=False, created_at__gte=now - timedelta(days=1))
        .values("code", "rule")
        .annotate(n=Count("id"), last=Max("created_at"))
        .order_by("-n", "code", "rule")
    ]
    decisions_url = admin_url("admin:devices_decision_changelist")
    by_code: dict = defaultdict(int)
    for r in refusals:
        by_code[r["code"]] += r["n"]
        if decisions_url:
            code = f"code__exact={r['code']}" if r["code"] is not None else "code__isnull=True"
            r["admin_url"] = f"{decisions_url}?allowed__exact=0&{code}"
    customers = list(Organization.objects.order_by("name")[:STAFF_ORGANIZATIONS])
    audit = list(AuditLog.objects.select_related("organization")[:25])
    for entry in audit:
        shown(entry, admin_url=admin_url("admin:licenses_auditlog_change", entry.pk))
    context = {
        "near_quota": _near_quota(now),
        "expiring": expiring,
        "overuse": overuse,
        "refusals": refusals,
        "refusals_by_code": sorted(by_code.items(), key=lambda kv: -kv[1]),
        "audit": audit,
        "customers": customers,
        "customers_limit": STAFF_ORGANIZATIONS,
        "now": now,
        "links": {
            "admin": admin_url("admin:index"),
            "licenses": admin_url("admin:licenses_license_changelist"),
            "import": admin_url("admin:licenses_license_import"),
            "devices": admin_url("admin:devices_device_changelist"),
            "audit": admin_url("admin:licenses_auditlog_changelist"),
            "decisions": decisions_url,
            "organizations": admin_url("admin:licenses_organization_changelist"),
        },
        "warn_percent": WARN_PERCENT,
    }
    return render(request, "portal/staff_dashboard.html", context)

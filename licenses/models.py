"""Organizations, licenses, items, projects and keys (SPEC sections 2-5)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from . import rules


def new_license_key() -> str:
    """Opaque, URL-safe, 192 bits from the OS CSPRNG."""
    return secrets.token_urlsafe(24)


class Organization(models.Model):
    # The customer's own id, e.g. "216998" (SPEC section 2); matched by id on import.
    id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class Membership(models.Model):
    OWNER = "owner"
    VIEWER = "viewer"
    ROLES = [(OWNER, "Owner"), (VIEWER, "Viewer")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLES, default=VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} {self.role} of {self.organization_id}"


class AlertRecipient(models.Model):
    """Where usage alerts and renewal reminders go. With none, they go to the owners."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="alert_recipients")
    email = models.EmailField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "email"], name="alert_recipient_unique")]

    def __str__(self) -> str:
        return self.email


class Project(models.Model):
    """A named group of items of one organization with one license key (DLS: handshake code)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="projects")
    name = models.CharField(max_length=128)
    license_key = models.CharField(max_length=64, unique=True, default=new_license_key, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Key rotation (SPEC section 2): the key before the last rotation works until it expires.
    previous_license_key = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    previous_key_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Project protection (SPEC section 6): an HMAC-SHA256 of the session password under the
    # server's protection key (devices/protection.py), never the password; "" for none.
    session_password_digest = models.CharField(max_length=64, blank=True, default="", editable=False)
    # Validation fields: lists of allowed values; an empty list does not restrict its client type.
    allowed_domains = models.JSONField(default=list, blank=True)
    allowed_app_ids = models.JSONField(default=list, blank=True)
    allowed_process_names = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["organization_id", "name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="project_name_unique")]

    def __str__(self) -> str:
        return self.name

    def items_in_order(self) -> models.QuerySet[LicenseItem]:
        """Consumption order: explicit positions first, then the item that expires first."""
        return self.items.select_related("license").order_by(
            F("position").asc(nulls_last=True), "license__expires_at", "id"
        )


class License(models.Model):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    STATUSES = [(ACTIVE, "Active"), (SUSPENDED, "Suspended"), (REVOKED, "Revoked")]

    license_id = models.CharField(max_length=128, unique=True)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="licenses")
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=16, choices=STATUSES, default=ACTIVE, db_index=True)
    # A renewal is a new license (a new term) whose items join the same project.
    renewal_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="renewals")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "license_id"]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=F("starts_at")), name="license_expires_after_start"),
            models.CheckConstraint(
                condition=Q(status__in=["active", "suspended", "revoked"]), name="license_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.license_id

    def is_in_term(self, now: datetime) -> bool:
        return self.starts_at <= now < self.expires_at


class LicenseItem(models.Model):
    """The unit bought and consumed: one product, one option, its quantity. Never split."""

    PERIODS = [(p, p.capitalize()) for p in rules.PERIOD_SECONDS]

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="items")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="items")
    product = models.CharField(max_length=8, choices=[(k, v) for k, v in rules.PRODUCTS.items()])
    edition = models.CharField(max_length=16, blank=True, default="", choices=[(e, e) for e in rules.EDITIONS])
    addon = models.CharField(max_length=64, blank=True, default="")
    option = models.CharField(max_length=32, choices=[(o, o) for o in rules.OPTIONS])
    # Scans, seats, servers, or devices per slot; null for per_page and per_domain.
    quantity = models.PositiveIntegerField(null=True, blank=True)
    # per_page: {"core": 100000, "ocr": 5000}, module -> pages.
    quantities = models.JSONField(null=True, blank=True)
    period = models.CharField(max_length=16, choices=PERIODS, default="yearly")
    activation_basis = models.CharField(
        max_length=32, default="first_authorization", choices=[(a, a) for a in rules.ACTIVATION_BASES]
    )
    device_grace_percent = models.PositiveIntegerField(default=10)
    quota_grace_percent = models.PositiveIntegerField(default=5)
    overuse_percent = models.PositiveIntegerField(default=10)
    # Device-slots above the quantity per license term; null means 1000 x quantity.
    overuse_budget = models.PositiveIntegerField(null=True, blank=True)
    dedup_interval_ms = models.PositiveIntegerField(default=3000)
    heartbeat_timeout_s = models.PositiveIntegerField(default=600)
    # per_domain: the unit as written ("*.example.com" or "example.com"); see licenses.domains.
    domain = models.CharField(max_length=255, blank=True, default="")
    # Consumption order within the project; null = by expiry after the explicitly placed items.
    position = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "product"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__isnull=True) | Q(quantity__gte=1), name="item_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(option__in=["per_page", "per_domain"]) | Q(quantity__isnull=False),
                name="item_quantity_required",
            ),
            models.CheckConstraint(
                condition=~Q(option="per_page") | Q(quantities__isnull=False), name="item_quantities_required"
            ),
            models.CheckConstraint(condition=~Q(option="per_domain") | ~Q(domain=""), name="item_domain_required"),
        ]

    def __str__(self) -> str:
        parts = [self.product, self.edition, self.addon, self.option]
        return f"#{self.pk} " + " ".join(p for p in parts if p)

    @property
    def item_id(self) -> str:
        """Item ids are strings everywhere (SPEC section 5)."""
        return str(self.pk)

    @property
    def period_seconds(self) -> int:
        return rules.PERIOD_SECONDS[self.period]

    @property
    def period_delta(self) -> timedelta:
        return timedelta(seconds=self.period_seconds)

    @property
    def seat_ceiling(self) -> int:
        """Active devices at which a new client device is refused (quantity plus grace, floored)."""
        assert self.quantity is not None
        if self.option == rules.PER_SERVER:
            return self.quantity
        return self.quantity * (100 + self.device_grace_percent) // 100

    @property
    def concurrency_ceiling(self) -> int:
        assert self.quantity is not None
        return self.quantity * (100 + self.overuse_percent) // 100

    @property
    def effective_overuse_budget(self) -> int:
        if self.overuse_budget is not None:
            return self.overuse_budget
        return 1000 * (self.quantity or 0)

    def quota_limit_reached(self, quantity: int, used: int) -> bool:
        """used >= quantity x (100 + grace)/100, exactly (no rounding): compare in integers."""
        return used * 100 >= quantity * (100 + self.quota_grace_percent)

    def option_fields_present(self) -> set[str]:
        """Option-specific fields set to a non-default value, for the applicability check."""
        present = set()
        if self.quantity is not None:
            present.add("quantity")
        if self.quantities:
            present.add("quantities")
        if self.domain:
            present.add("domain")
        return present

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            rules.check_item_fields(
                self.product, self.option, self.edition, self.addon, present=self.option_fields_present()
            )
        except ValidationError as e:
            errors.update(e.message_dict)
        if self.option == rules.PER_PAGE and self.quantities is not None:
            if not isinstance(self.quantities, dict) or not self.quantities:
                errors.setdefault("quantities", []).append("quantities must map page modules to page counts")
            else:
                for module, n in self.quantities.items():
                    if module not in rules.PAGE_MODULES:
                        errors.setdefault("quantities", []).append(
                            f"unknown page module {module!r}: must be one of {', '.join(rules.PAGE_MODULES)}"
                        )
                    elif not isinstance(n, int) or isinstance(n, bool) or n < 1:
                        errors.setdefault("quantities", []).append(f"quantities.{module} must be an integer >= 1")
        if self.project_id and self.license_id and self.project.organization_id != self.license.organization_id:
            errors.setdefault("project", []).append("the project belongs to another organization")
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs) -> None:
        # The applicability table holds on every path that saves an item, not just forms.
        self.clean()
        super().save(*args, **kwargs)


class MultiTenantDomain(models.Model):
    """Registrable domains shared by a platform's tenants (e.g. force.com): the per_domain unit
    is one label deeper for these. Staff edit the list in the admin."""

    domain = models.CharField(max_length=255, unique=True)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args, **kwargs) -> None:
        self.domain = self.domain.strip().strip(".").lower()
        super().save(*args, **kwargs)


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):  # type: ignore[override]
        raise PermissionError("the audit log cannot be changed")

    def delete(self):  # type: ignore[override]
        raise PermissionError("the audit log cannot be changed")


class AuditLog(models.Model):
    """Who did what to which object, when, with the state before and after. Append-only."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=128)
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.SET_NULL)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.object_type} {self.object_id}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("the audit log cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the audit log cannot be changed")

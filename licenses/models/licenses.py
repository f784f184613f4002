"""Licenses and their items; every limit of SPEC section 4 is computed on ``LicenseItem``."""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Cast, Coalesce

from .. import rules
from .organizations import Organization
from .projects import Project


def in_term_q(now: datetime, via: str = "") -> Q:
    """Licenses in their term at ``now`` (``starts_at <= now < expires_at``) as a filter; ``via``
    is the path to the license, e.g. ``"license__"`` from an item."""
    return Q(**{f"{via}starts_at__lte": now, f"{via}expires_at__gt": now})


def usable_q(now: datetime, via: str = "") -> Q:
    """The licenses usable at ``now`` (SPEC section 4: ``active`` and in term) as a filter; ``via``
    is the path to the license, e.g. ``"license__"`` from an item or ``"item__license__"`` from a
    counter. ``License.usable_at`` is the same rule on one license."""
    return Q(**{f"{via}status": License.ACTIVE}) & in_term_q(now, via)


class LicenseQuerySet(models.QuerySet):
    def usable_at(self, now: datetime) -> LicenseQuerySet:
        return self.filter(usable_q(now))


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

    objects = LicenseQuerySet.as_manager()

    def in_term(self, now: datetime) -> bool:
        """``starts_at <= now < expires_at`` (SPEC section 4)."""
        return self.starts_at <= now < self.expires_at

    def usable_at(self, now: datetime) -> bool:
        """Whether its items serve devices at ``now`` (SPEC section 4, "Common"): the license is
        ``active`` and ``starts_at <= now < expires_at``. ``usable_q`` is the same rule as a filter."""
        return self.status == self.ACTIVE and self.in_term(now)

    # What a person would call the license at a moment (lists and pages say these words).
    DISPLAY_STATUSES = ("active", "expired", "not started", "suspended", "revoked")

    def display_status(self, now: datetime) -> str:
        """``revoked`` or ``suspended`` when staff said so, else by the term: ``not started``,
        ``expired`` or ``active``. Only ``active`` is usable (see ``usable_at``)."""
        if self.status != self.ACTIVE:
            return self.status
        if now < self.starts_at:
            return "not started"
        if now >= self.expires_at:
            return "expired"
        return "active"


# Device-slots above the quantity per license term when an item sets no overuse budget (SPEC 4).
OVERUSE_BUDGET_PER_DEVICE = 1000


class LicenseItemQuerySet(models.QuerySet):
    def in_consumption_order(self) -> LicenseItemQuerySet:
        """Consumption order (SPEC section 2): items placed by staff or the customer first, by
        position; then the item that expires first; the item id breaks ties. Every list of a
        project's items and the choice of the item that serves a device use this order."""
        return self.select_related("license").order_by(F("position").asc(nulls_last=True), "license__expires_at", "id")

    def usable_at(self, now: datetime) -> LicenseItemQuerySet:
        """Items whose license is usable at ``now`` (SPEC section 4, see ``License.usable_at``)."""
        return self.filter(usable_q(now, via="license__"))

    def with_effective_overuse_budget(self) -> LicenseItemQuerySet:
        """Annotates ``budget``: the overuse budget, or its default 1000 x quantity (SPEC 4)."""
        return self.annotate(budget=effective_overuse_budget_expression())


def effective_overuse_budget_expression(via: str = ""):
    """``LicenseItem.effective_overuse_budget`` as a database expression (``via``: path to the item)."""
    # In 64 bits, as the SQL below: 1000 x a quantity above 2,147,483 overflows an integer.
    big = models.BigIntegerField()
    return Coalesce(
        Cast(F(f"{via}overuse_budget"), big),
        OVERUSE_BUDGET_PER_DEVICE * Cast(F(f"{via}quantity"), big),
        output_field=big,
    )


def effective_overuse_budget_sql(alias: str) -> str:
    """The same rule for raw SQL over the items table aliased ``alias``."""
    # In 64 bits: 1000 x a quantity above 2,147,483 overflows an integer.
    return f"COALESCE(CAST({alias}.overuse_budget AS BIGINT), {OVERUSE_BUDGET_PER_DEVICE} * CAST({alias}.quantity AS BIGINT))"


class LicenseItem(models.Model):
    """The unit bought and consumed: one product, one option, its quantity. Never split.

    Every limit of SPEC section 4 is computed here, in integers, and nowhere else."""

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

    objects = LicenseItemQuerySet.as_manager()

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
        """Active devices at which a new device is refused (SPEC section 4): per_client_device
        floor(quantity x (100 + device_grace_percent)/100), so 10 seats admit an 11th device and
        30 admit 33; per_server the quantity (no grace)."""
        assert self.quantity is not None
        if self.option == rules.PER_SERVER:
            return self.quantity
        return self.quantity * (100 + self.device_grace_percent) // 100

    @property
    def concurrency_ceiling(self) -> int:
        """Distinct active devices a slot may reach while the overuse budget lasts (SPEC section 4,
        per_concurrent_device): floor(quantity x (100 + overuse_percent)/100)."""
        assert self.quantity is not None
        return self.quantity * (100 + self.overuse_percent) // 100

    @property
    def effective_overuse_budget(self) -> int:
        """Device-slots above the quantity per license term (SPEC section 4): ``overuse_budget``,
        by default 1000 x quantity. ``effective_overuse_budget_expression`` and ``_sql`` are the
        same rule for queries."""
        if self.overuse_budget is not None:
            return self.overuse_budget
        return OVERUSE_BUDGET_PER_DEVICE * (self.quantity or 0)

    def quota_ceiling(self, quantity: int) -> Fraction:
        """The quota limit of SPEC section 4, exactly: quantity x (100 + quota_grace_percent)/100
        (not rounded; 5 scans with 5 % grace is 5.25). ``quantity`` is the item's quantity, or one
        module's pages for per_page."""
        return Fraction(quantity * (100 + self.quota_grace_percent), 100)

    def quota_limit_reached(self, quantity: int, used: int) -> bool:
        """SPEC section 4: refused once used >= quantity x (100 + grace)/100, exactly; compared in
        integers (used x 100 >= quantity x (100 + grace))."""
        return used * 100 >= quantity * (100 + self.quota_grace_percent)

    def quota_refused_from(self, quantity: int) -> int:
        """The smallest ``used`` that ``quota_limit_reached`` refuses: ceil(quantity x (100 +
        grace)/100). Quantity 5 with 5 % grace is refused from 6; 100 with 5 % from 105."""
        return -(-quantity * (100 + self.quota_grace_percent) // 100)

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

    def validate_rules(self, present: set[str] | None = None) -> None:
        """The item's own rules, without the database: the applicability table (SPEC section 3),
        the fields of its option, integer ranges, page modules and the licensed domain (SPEC
        section 4). Raises ValidationError keyed by field with the words of the rule.

        Every path that creates an item runs this: the admin's forms (through ``clean``), the
        license file (``licenses.license_file``) and ``save``. ``present`` names the option
        fields the caller was given; by default, the ones set to a non-default value."""
        if self.domain:
            self.domain = self.domain.strip().lower()
        errors = rules.item_errors(self, self.option_fields_present() if present is None else present)
        if errors:
            raise ValidationError(errors)

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            self.validate_rules()
        except ValidationError as e:
            errors.update(e.message_dict)
        if self.project_id and self.license_id and self.project.organization_id != self.license.organization_id:
            errors.setdefault("project", []).append("the project belongs to another organization")
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs) -> None:
        # The applicability table holds on every path that saves an item, not just forms.
        self.clean()
        super().save(*args, **kwargs)

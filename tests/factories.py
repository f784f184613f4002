"""Test data: factory-boy factories, one per model, and the few helpers tests share.

Every factory has sensible defaults; pass only what a test is about. Times are relative to
``now`` (a factory parameter where a model has several times), which defaults to ``NOW``.

    item = LicenseItemFactory(per_page=True, product="dwt")      # a trait per option
    dev = DeviceFactory(item=item, now=now, state=Device.EXPIRED)
    UsageReportFactory(device=dev, slot_start=slot, counted={"pages_core": 3})
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import factory
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import F
from django.test import Client
from factory.django import DjangoModelFactory

from devices.models import Decision, Device, QuotaCounter
from licenses.models import License, LicenseItem, Membership, Organization, Project
from tests.moments import MODEL_BACKEND, NOW, PASSWORD, SLOT  # noqa: E402,F401
from usage.models import ConcurrencyRollup, DeviceUsageDay, SlotDevice, UsageCount, UsageReport, UsageRollup

# --- licenses: what was sold ---------------------------------------------------------------


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    id = factory.Sequence(lambda n: f"9{n:05d}")
    name = factory.Sequence(lambda n: f"Org {n}")


class UserFactory(DjangoModelFactory):
    """A user with password ``PASSWORD``; with ``organization`` also a membership of ``role``."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    class Params:
        organization = None
        role = Membership.OWNER

    username = factory.Sequence(lambda n: f"user{n}")
    password = PASSWORD
    membership = factory.Maybe(
        "organization",
        factory.RelatedFactory(
            "tests.factories.MembershipFactory",
            factory_related_name="user",
            organization=factory.SelfAttribute("..organization"),
            role=factory.SelfAttribute("..role"),
        ),
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class._default_manager.create_user(*args, **kwargs)


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.OWNER


class ProjectFactory(DjangoModelFactory):
    class Meta:
        model = Project

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"project-{n}")


class LicenseFactory(DjangoModelFactory):
    class Meta:
        model = License

    license_id = factory.Sequence(lambda n: f"L-TEST-{n:05d}")
    organization = factory.SubFactory(OrganizationFactory)
    starts_at = NOW - timedelta(days=30)
    expires_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(days=365))
    status = License.ACTIVE


def _option_trait(option: str) -> factory.Trait:
    return factory.Trait(option=option)


class LicenseItemFactory(DjangoModelFactory):
    """An item of ``option`` (or a trait: ``per_page=True``...) with the amount field and the
    edition or add-on its option needs; on a new license and project of one organization unless
    given (an item given only its project goes on a new license of the project's organization)."""

    class Meta:
        model = LicenseItem

    class Params:
        per_client_device = _option_trait("per_client_device")
        per_concurrent_device = _option_trait("per_concurrent_device")
        per_server = _option_trait("per_server")
        per_barcode_scan = _option_trait("per_barcode_scan")
        per_page = _option_trait("per_page")
        per_domain = _option_trait("per_domain")

    license = factory.SubFactory(LicenseFactory)
    project = factory.SubFactory(ProjectFactory, organization=factory.SelfAttribute("..license.organization"))
    product = "dbr"
    option = "per_client_device"
    quantity = factory.LazyAttribute(lambda o: None if o.option in ("per_page", "per_domain") else 10)
    quantities = factory.LazyAttribute(lambda o: {"core": 1000} if o.option == "per_page" else None)
    domain = factory.LazyAttribute(lambda o: "example.com" if o.option == "per_domain" else "")
    edition = factory.LazyAttribute(
        lambda o: (
            "server"
            if o.option == "per_server"
            else "javascript"
            if (o.option, o.product) == ("per_domain", "dbr")
            else ""
        )
    )
    addon = factory.LazyAttribute(
        lambda o: "barcode_reader" if (o.option, o.product) == ("per_barcode_scan", "dwt") else ""
    )

    @classmethod
    def _generate(cls, strategy, params):
        if "project" in params and "license" not in params and not any(k.startswith("license__") for k in params):
            params = {**params, "license__organization": params["project"].organization}
        return super()._generate(strategy, params)


# --- devices: seats and decisions ----------------------------------------------------------


class DeviceFactory(DjangoModelFactory):
    """A device holding ``item`` (an active one until 30 days after ``now``; one in another
    state ended 2 hours before ``now``)."""

    class Meta:
        model = Device

    class Params:
        now = NOW

    item = factory.SubFactory(LicenseItemFactory)
    project = factory.SelfAttribute("item.project")
    device_uuid = factory.Sequence(lambda n: f"dev-{n:06d}")
    client_type = factory.LazyAttribute(lambda o: "server" if o.item.option == "per_server" else "desktop")
    state = Device.ACTIVE
    first_authorized_at = factory.LazyAttribute(lambda o: o.now - timedelta(days=2))
    authorized_at = factory.LazyAttribute(lambda o: o.now - timedelta(hours=1))
    last_seen_at = factory.LazyAttribute(lambda o: o.now - timedelta(minutes=5))
    active_until = factory.LazyAttribute(
        lambda o: o.now + timedelta(days=30) if o.state == Device.ACTIVE else o.now - timedelta(days=1)
    )
    ended_at = factory.LazyAttribute(lambda o: None if o.state == Device.ACTIVE else o.now - timedelta(hours=2))


class DecisionFactory(DjangoModelFactory):
    """A decision about ``device`` an hour before ``now``: kept seats, or refused with 120."""

    class Meta:
        model = Decision

    class Params:
        now = NOW

    device = factory.SubFactory(DeviceFactory)
    project = factory.SelfAttribute("device.project")
    device_uuid = factory.SelfAttribute("device.device_uuid")
    item = factory.SelfAttribute("device.item")
    endpoint = Decision.AUTHORIZE
    allowed = True
    rule = factory.LazyAttribute(lambda o: "seats_kept" if o.allowed else "seats_exhausted")
    code = factory.LazyAttribute(lambda o: None if o.allowed else 120)
    created_at = factory.LazyAttribute(lambda o: o.now - timedelta(hours=1))


class QuotaCounterFactory(DjangoModelFactory):
    """The counter of ``item``'s ``metric`` set to ``used`` (updated if it exists)."""

    class Meta:
        model = QuotaCounter

    item = factory.SubFactory(LicenseItemFactory, per_barcode_scan=True)
    metric = "barcode_scans"
    used = 0

    @classmethod
    def _create(cls, model_class, *args, item, metric, used, **kwargs):
        return model_class._default_manager.update_or_create(
            item=item, metric=metric, defaults={"used": used, **kwargs}
        )[0]


# --- usage: reports, slots, rollups --------------------------------------------------------


class UsageReportFactory(DjangoModelFactory):
    """A recorded usage report with one UsageCount per non-zero metric of ``counted``; for a
    concurrent item with a non-zero count also the device's SlotDevice row (as the API records
    it; ``concurrent=`` forces or skips it)."""

    class Meta:
        model = UsageReport
        skip_postgeneration_save = True

    device = factory.SubFactory(DeviceFactory)
    item = factory.SelfAttribute("device.item")
    report_id = factory.Sequence(lambda n: f"r-{n}")
    slot_start = SLOT
    body_hash = "0" * 64
    counted = factory.Dict({})
    allowed = True
    response = factory.LazyAttribute(lambda o: {"status": "accepted"} if o.allowed else {"allowed": False})
    received_at = factory.LazyAttribute(lambda o: o.slot_start + timedelta(seconds=170))

    @factory.post_generation
    def counts(obj, create, extracted, **kwargs):
        UsageCount.objects.bulk_create(
            [
                UsageCount(report=obj, item=obj.item, slot_start=obj.slot_start, metric=m, count=n)
                for m, n in obj.counted.items()
                if n
            ]
        )
        day = obj.slot_start.astimezone(UTC).date()
        for m, n in obj.counted.items():  # the device's day, as the API adds it (usage.hot_sql)
            if n:
                row, _ = DeviceUsageDay.objects.get_or_create(
                    device=obj.device, item=obj.item, day=day, metric=m, defaults={"count": 0}
                )
                DeviceUsageDay.objects.filter(pk=row.pk).update(count=F("count") + n)

    @factory.post_generation
    def concurrent(obj, create, extracted, **kwargs):
        if extracted is None:
            extracted = obj.item.option == "per_concurrent_device" and any(obj.counted.values())
        if extracted:
            SlotDevice.objects.get_or_create(item=obj.item, slot_start=obj.slot_start, device=obj.device)


class UsageRollupFactory(DjangoModelFactory):
    class Meta:
        model = UsageRollup

    item = factory.SubFactory(LicenseItemFactory, per_barcode_scan=True)
    granularity = UsageRollup.DAY
    bucket_start = factory.LazyFunction(lambda: day_start(NOW))
    metric = "barcode_scans"
    count = 0


class ConcurrencyRollupFactory(DjangoModelFactory):
    class Meta:
        model = ConcurrencyRollup

    item = factory.SubFactory(LicenseItemFactory, per_concurrent_device=True)
    slot_start = SLOT
    active_devices = 0
    limit = factory.LazyAttribute(lambda o: o.item.quantity)
    overuse_devices = 0


def day_start(now: datetime, days_ago: int = 0) -> datetime:
    """Midnight UTC of the day ``days_ago`` days before ``now``."""
    d = (now - timedelta(days=days_ago)).date()
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


# --- a small world for the portal ----------------------------------------------------------


@dataclass
class World:
    now: datetime
    org: Organization
    other_org: Organization
    project: Project
    other_project: Project
    owner: object
    viewer: object
    outsider: object
    staff: object
    scan: LicenseItem
    pages: LicenseItem
    seats: LicenseItem
    concurrent: LicenseItem
    server: LicenseItem
    domain: LicenseItem
    device: Device
    other_device: Device


def world(now: datetime, *, devices: int = 3, tag: str = "") -> World:
    """Two organizations; the first has a project with an item of every option, ``devices``
    active seat devices, decisions, counters and rollups; the second has a project and a device.
    Users: an owner and a viewer of the first, an owner of the second (the outsider), a staffer."""
    org = OrganizationFactory(name="Acme Test")
    other_org = OrganizationFactory(name="Globex Test")
    lic = LicenseFactory(organization=org, starts_at=now - timedelta(days=60), expires_at=now + timedelta(days=20))
    project = ProjectFactory(organization=org, name=f"web-app{tag}")
    on = {"license": lic, "project": project}
    scan = LicenseItemFactory(per_barcode_scan=True, quantity=10000, **on)
    pages = LicenseItemFactory(per_page=True, product="dwt", quantities={"core": 1000, "ocr": 100}, **on)
    seats = LicenseItemFactory(per_client_device=True, quantity=10, **on)
    concurrent = LicenseItemFactory(per_concurrent_device=True, quantity=5, **on)
    server = LicenseItemFactory(per_server=True, quantity=2, **on)
    domain = LicenseItemFactory(per_domain=True, product="dwt", domain="acme.example", **on)
    other_project = ProjectFactory(organization=other_org, name=f"globex-app{tag}")
    other_item = LicenseItemFactory(per_client_device=True, project=other_project, quantity=5)
    owner = UserFactory(
        username=f"acme-owner{tag}", organization=org, role=Membership.OWNER, email="owner@acme.example"
    )
    viewer = UserFactory(username=f"acme-viewer{tag}", organization=org, role=Membership.VIEWER)
    outsider = UserFactory(username=f"globex-owner{tag}", organization=other_org, role=Membership.OWNER)
    staff = UserFactory(username=f"staffer{tag}", is_staff=True)
    first = None
    for k in range(devices):
        d = DeviceFactory(item=seats, now=now, client_type="web", device_name=f"Front desk {k}")
        DecisionFactory(device=d, now=now, counts={"active": k, "quantity": 10, "ceiling": 11})
        UsageReportFactory(
            device=d,
            slot_start=now - timedelta(hours=3),
            received_at=now - timedelta(hours=3) + timedelta(minutes=1),
            counted={"barcode_scans": 5 + k},
            response={"allowed": True},
        )
        first = first or d
    for _ in range(max(1, devices // 3)):
        DeviceFactory(item=seats, now=now, client_type="web", state=Device.EXPIRED)
    DeviceFactory(item=server, now=now, device_name="app-server-1")
    QuotaCounterFactory(item=scan, metric="barcode_scans", used=8500)
    QuotaCounterFactory(item=pages, metric="pages_core", used=200)
    QuotaCounterFactory(item=pages, metric="pages_ocr", used=100)
    QuotaCounterFactory(item=concurrent, metric="overuse_spent", used=40)
    for days_ago in range(1, 8):
        UsageRollupFactory(item=scan, metric="barcode_scans", bucket_start=day_start(now, days_ago), count=100)
        UsageRollupFactory(item=pages, metric="pages_core", bucket_start=day_start(now, days_ago), count=10)
    UsageRollupFactory(
        item=scan, metric="barcode_scans", bucket_start=day_start(now), count=40, granularity=UsageRollup.TWO_HOURS
    )
    UsageRollupFactory(item=scan, metric="barcode_scans", bucket_start=day_start(now), count=40)
    for k in range(devices):
        ConcurrencyRollupFactory(
            item=concurrent,
            slot_start=day_start(now) + timedelta(seconds=180 * k),
            active_devices=4 + k,
            limit=5,
            overuse_devices=max(0, k - 1),
        )
    other_device = DeviceFactory(item=other_item, now=now, client_type="web", device_name="Globex laptop")
    return World(
        now, org, other_org, project, other_project, owner, viewer, outsider, staff,
        scan, pages, seats, concurrent, server, domain, first, other_device,
    )  # fmt: skip


# Shared helpers kept in their own modules, reachable as ``factories.<name>`` as before.
from tests.api_calls import (  # noqa: E402,F401
    _iso,
    _travellers,
    auth_body,
    authorize,
    error_of,
    minutes,
    move_clock,
    post,
    release,
    report,
    usage_body,
)
from tests.license_files import SPEC_EXAMPLE, item_for, license_file, spec_example  # noqa: E402,F401


def row_counts() -> dict[str, int]:
    """The row count of every table of every installed model."""
    return {m._meta.label: m._default_manager.count() for m in apps.get_models()}


def staff_client(username: str = "admin", superuser: bool = True) -> tuple[Client, object]:
    """A client logged in as a new staff user (a superuser unless told)."""
    user = UserFactory(username=factory.Sequence(lambda n: f"{username}{n}"), is_staff=True, is_superuser=superuser)
    client = Client()
    client.force_login(user, backend=MODEL_BACKEND)
    return client, user

"""Devices, their seats, and the record of every authorization decision (SPEC sections 2, 4, 6)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from licenses.models import LicenseItem, Project
from licenses.rules import CLIENT_TYPES


def holding_seat_q(now, via: str = "") -> Q:
    """SPEC section 4: a device holds its seat while it is ``active`` and ``now < active_until``,
    whether or not the expiry job has run yet. The one home of that rule: the queryset method
    ``Device.objects.holding_seat(now)`` and the raw-SQL ``holding_seat_sql`` are built from it
    (``via`` is the path to the device, e.g. ``"devices__"`` from an item)."""
    return Q(**{f"{via}state": Device.ACTIVE, f"{via}active_until__gt": now})


def holding_seat_sql(alias: str) -> str:
    """``holding_seat_q`` for raw SQL over the devices table aliased ``alias``: one ``%s``
    parameter, ``now``. ``ran_out_sql`` is its complement among active rows."""
    return f"({alias}.state = '{Device.ACTIVE}' AND {alias}.active_until > %s)"


def ran_out_sql(alias: str) -> str:
    """Active rows whose ``active_until`` has come (not holding a seat, not yet marked expired
    by the job): one ``%s`` parameter, ``now``."""
    return f"({alias}.state = '{Device.ACTIVE}' AND NOT {alias}.active_until > %s)"


# The columns the device search looks in (devices.search: the one home of its meaning; their
# joined text is kept in ``DeviceSearch``).
SEARCHED_COLUMNS = ("device_uuid", "device_name", "origin", "platform")


class DeviceQuerySet(models.QuerySet):
    def holding_seat(self, now) -> DeviceQuerySet:
        """Devices holding a seat at ``now`` (``holding_seat_q``)."""
        return self.filter(holding_seat_q(now))

    def ran_out(self, now) -> DeviceQuerySet:
        """Devices still ``active`` whose ``active_until`` has come: the expiry job's work."""
        return self.filter(state=Device.ACTIVE).exclude(active_until__gt=now)


class Device(models.Model):
    """One client, identified by ``device_uuid`` within a project, bound to one item at a time.

    A device holds its item's seat while ``state == active`` and ``now < active_until``; the
    expiry job later marks it expired. Released and expired devices keep their row (history,
    usage from devices that lost their seat is still recorded against ``item``)."""

    ACTIVE = "active"
    EXPIRED = "expired"
    RELEASED = "released"
    STATES = [(ACTIVE, "Active"), (EXPIRED, "Expired"), (RELEASED, "Released")]

    # No single-column indexes on the two keys: the unique (project, device_uuid) and
    # device_seat_idx (item, ...) lead with them, and every new device would write both twice.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="devices", db_index=False)
    device_uuid = models.CharField(max_length=128)
    item = models.ForeignKey(LicenseItem, null=True, on_delete=models.PROTECT, related_name="devices", db_index=False)
    client_type = models.CharField(max_length=16, choices=[(c, c) for c in CLIENT_TYPES])
    # Web devices: scheme://host[:port], lower-cased, default port dropped.
    origin = models.CharField(max_length=300, blank=True, default="")
    platform = models.CharField(max_length=64, blank=True, default="")
    device_name = models.CharField(max_length=255, blank=True, default="")
    sdk_version = models.CharField(max_length=64, blank=True, default="")
    # The HTTP User-Agent of its latest authorization (truncated), for seat burn (docs/insight.md).
    user_agent = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(max_length=16, choices=STATES, default=ACTIVE)
    first_authorized_at = models.DateTimeField()
    authorized_at = models.DateTimeField()  # latest authorization
    last_seen_at = models.DateTimeField()  # latest contact (indexed per project: device_list_idx)
    first_used_at = models.DateTimeField(null=True, blank=True)  # first usage report (first_use basis)
    active_until = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)  # when it expired or was released

    objects = DeviceQuerySet.as_manager()

    def holds_seat(self, now) -> bool:
        """``holding_seat_q`` for one loaded device."""
        return self.state == Device.ACTIVE and self.active_until > now

    # Registered offline (SPEC section 12): holds its seat to active_until (the token's exp), no contact.
    offline = models.BooleanField(default=False)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "device_uuid"], name="device_uuid_unique_in_project"),
            models.CheckConstraint(condition=Q(state__in=["active", "expired", "released"]), name="device_state_valid"),
        ]
        indexes = [
            # Seat counting: active devices of an item that have not run out.
            models.Index(fields=["item", "state", "active_until"], name="device_seat_idx"),
            # The expiry job: active devices past active_until.
            models.Index(fields=["state", "active_until"], name="device_expiry_idx"),
            # A project's devices by last contact: the portal's device list (newest first, any
            # page), devices.csv and the idle devices; every query on last_seen_at is per project.
            models.Index(fields=["project", "last_seen_at", "id"], name="device_list_idx"),
        ]

    def __str__(self) -> str:
        return self.device_uuid


class DeviceSearch(models.Model):
    """The searched text of one device: its ``SEARCHED_COLUMNS`` joined by a line feed, written
    only by the database's triggers on the device table (devices.search.install) when a device is
    created, deleted or one of those columns changes, so the usage refresh of a device (every
    report) writes no trigram index. No foreign key in the database: the delete trigger removes
    the row with its device, and Django never deletes it by itself (``DO_NOTHING``)."""

    device = models.OneToOneField(
        Device, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    text = models.TextField()

    def __str__(self) -> str:
        return self.text


class DeviceTally(models.Model):
    """A change of how many devices a project has in a state (``n``: +1 or -1, or a sum of them):
    written only by the database's triggers on the device table (devices.tally.install) when a
    device is created, deleted or its project, state or client type changes, so the usage
    refresh of a device (every report) writes nothing here. A project's rows summed are its
    devices by state; the expiry job folds them into one row per (project, state, server)
    (devices.tally.compact). Append-only between folds: a trigger inserts and never updates, so
    no request waits on another's tally row. No foreign key in the database: a project's rows
    outlive it until the fold drops their zero sums, and Django never deletes them by itself
    (``DO_NOTHING``)."""

    project = models.ForeignKey(Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    state = models.CharField(max_length=16)
    server = models.BooleanField()
    n = models.IntegerField()

    def __str__(self) -> str:
        return f"{self.project_id} {self.state}{' server' if self.server else ''} {self.n:+d}"


class Decision(models.Model):
    """Every authorization decision and refusal, with the rule that decided it and the counts and
    limits at that moment, so that staff can explain it (SPEC section 10)."""

    AUTHORIZE = "authorize"
    USAGE = "usage"
    RELEASE = "release"
    OFFLINE = "offline"  # an offline registration (SPEC section 12)
    ENDPOINTS = [(AUTHORIZE, "authorize"), (USAGE, "usage"), (RELEASE, "release"), (OFFLINE, "offline")]

    # Covered by decision_device_idx (project, device_uuid, created_at).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="decisions", db_index=False)
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    # Every look-up by uuid is one project's (decision_device_idx); the admin's exact search is
    # case-insensitive, which a plain index on the column does not serve.
    device_uuid = models.CharField(max_length=128)
    item = models.ForeignKey(LicenseItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    endpoint = models.CharField(max_length=16, choices=ENDPOINTS)
    allowed = models.BooleanField()
    code = models.PositiveIntegerField(null=True, blank=True)  # SPEC error code when refused
    # A short name of the rule that decided, e.g. "seat_available", "seat_grace_exhausted".
    rule = models.CharField(max_length=64)
    message = models.CharField(max_length=500, blank=True, default="")
    # Counts and limits at that moment, e.g. {"active": 33, "quantity": 30, "ceiling": 33}.
    counts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)
    # The device request's address (devices.context), for key-sharing flags; None outside the API.
    client_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "device_uuid", "created_at"], name="decision_device_idx"),
            models.Index(fields=["code", "created_at"], name="decision_code_idx"),
        ]

    def __str__(self) -> str:
        verdict = "allowed" if self.allowed else f"refused {self.code}"
        return f"{self.endpoint} {self.device_uuid} {verdict} ({self.rule})"


OVERUSE_SPENT = "overuse_spent"  # device-slots above the quantity, concurrent items


class QuotaCounter(models.Model):
    """Running total of one metric of one item (scans, pages per module, overuse spent).
    It lives with the devices because authorization reads it (a scan or page item whose quota is
    spent refuses new devices, SPEC section 4); the usage app writes it.

    For scans and pages the total is this row plus its shares (``QuotaShard``, ``devices.quota``,
    which every reader goes through); overuse spent is counted here alone, under the item lock.
    Written in the transaction that records the report, so it never loses or doubles a count."""

    item = models.ForeignKey(LicenseItem, on_delete=models.CASCADE, related_name="counters")
    metric = models.CharField(max_length=32)
    used = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "metric"], name="quota_counter_unique"),
            models.CheckConstraint(condition=Q(used__gte=0), name="quota_counter_non_negative"),
        ]


class QuotaShard(models.Model):
    """A share of one quota counter (``devices.quota``): reports of devices mapped to ``shard``
    add to ``used`` here instead of locking the counter row, while ``used`` stays within
    ``allot`` (headroom granted under ``granted_limit``, the refused-from the item had then), or
    all of them when ``exhausted`` (the total had reached that limit). The total is the counter's
    ``used`` plus its shares'."""

    item = models.ForeignKey(LicenseItem, on_delete=models.CASCADE, related_name="+", db_index=False)
    metric = models.CharField(max_length=32)
    shard = models.PositiveSmallIntegerField()
    used = models.BigIntegerField(default=0)
    allot = models.BigIntegerField(default=0)
    granted_limit = models.BigIntegerField(default=0)
    exhausted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "metric", "shard"], name="quota_shard_unique"),
            models.CheckConstraint(condition=Q(used__gte=0), name="quota_shard_non_negative"),
        ]


class SeatCounter(models.Model):
    """The number of devices of an item whose ``state`` is ``active`` (SPEC section 4: seats and
    servers counted in constant time). It moves in the same transaction as every state or item
    change of a device, through ``devices.seats`` (``take_seat``, ``free_seat``,
    ``free_seats``); ``repair_seat_counts`` recounts it from the devices.

    It counts ``active`` rows, not seats held: a device whose ``active_until`` has come holds no
    seat but stays counted until the expiry job (or a full item's own clean-up) marks it
    expired, so the counter is never below the seats held and a check against it never lets a
    seat overshoot."""

    item = models.OneToOneField(LicenseItem, primary_key=True, on_delete=models.CASCADE, related_name="seat_counter")
    # With its shares (SeatShare): a device freed goes off this row, one taken onto its share, so
    # this row alone may be below zero; the total (``devices.seats``) never is.
    active = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.item_id}: {self.active} active"


class SeatShare(models.Model):
    """A share of one item's seat counter (``devices.seats``): new devices mapped to ``shard``
    take their seat here, without locking the counter row, while ``active`` stays within
    ``allot`` (seats granted under ``granted_ceiling``, the item's ceiling then). The item's
    active devices are the counter's ``active`` plus its shares'."""

    item = models.ForeignKey(LicenseItem, on_delete=models.CASCADE, related_name="+", db_index=False)
    shard = models.PositiveSmallIntegerField()
    active = models.BigIntegerField(default=0)
    allot = models.BigIntegerField(default=0)
    granted_ceiling = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "shard"], name="seat_share_unique")]


class ReleaseBatch(models.Model):
    """A bulk release of a project's devices (idle ones, or a seat-burn group's older UUIDs) that
    any owner of the organization may undo until ``undo_until`` (SPEC section 10: a destructive
    action confirms and says what it does; ``portal.bulk`` writes and undoes it). Kept on the
    server, not in a browser session, so another owner or another browser can undo it; the
    conditional update that sets ``undone_at`` claims the undo once."""

    IDLE, SEAT_BURN = "idle", "seat_burn"
    KINDS = [(IDLE, "idle devices"), (SEAT_BURN, "seat burn")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="release_batches")
    kind = models.CharField(max_length=16, choices=KINDS, default=IDLE)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    released_at = models.DateTimeField()
    undo_until = models.DateTimeField()
    device_ids = models.JSONField(default=list)  # Device pks whose seat the release freed
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["project", "undo_until"], name="release_batch_open_idx")]

    def __str__(self) -> str:
        return f"{len(self.device_ids)} {self.get_kind_display()} of project {self.project_id} at {self.released_at}"

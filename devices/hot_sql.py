"""The reads of the authorization hot path (SPEC section 6, ``POST /api/v1/authorize``), the
twin of ``usage.hot_sql``: querysets written with the rules' homes (consumption order:
``LicenseItemQuerySet.in_consumption_order``), compiled once per connection
(``devices.prepared``) instead of once per request.

- ``project_by_key``: the project whose current or previous key is the request's (the caller
  decides whether a previous key is still valid), one statement over two unique indexes;
- ``items_with_device``: the project's items in consumption order, each with the columns of the
  request's device riding on it as subqueries of the unique ``(project, device_uuid)`` index.
"""

from __future__ import annotations

from django.db.models import F, OuterRef, Q, Subquery

from devices.models import Device, SeatShare
from devices.prepared import Prepared
from devices.seats import shard_of
from licenses.models import LicenseItem, Project

DEVICE_FIELDS = ("id", "state", "item_id", "active_until", "offline", "client_type", "origin")


def _project_queryset(*, license_key: str):
    return Project.objects.filter(Q(license_key=license_key) | Q(previous_license_key=license_key)).order_by("pk")[:1]


def _items_queryset(*, project_id: int, device_uuid: str, shard: int):
    mine = Device.objects.filter(project_id=project_id, device_uuid=device_uuid)
    fields = {f"_device_{name}": Subquery(mine.values(name)[:1]) for name in DEVICE_FIELDS}
    # The device's share of each seat item's counter as read (devices.seats.take_seat): a take
    # it cannot fit goes the exact way at once instead of rolling back first.
    share = SeatShare.objects.filter(item_id=OuterRef("pk"), shard=shard)
    fields["_share_room"] = Subquery(share.annotate(room=F("allot") - F("active")).values("room")[:1])
    fields["_share_ceiling"] = Subquery(share.values("granted_ceiling")[:1])
    return LicenseItem.objects.filter(project_id=project_id).in_consumption_order().annotate(**fields)


_PROJECT = Prepared("devices.project_by_key", _project_queryset, license_key="\x00key")
# (The shard sentinel stays within its small-integer column: Django drops a look-up beyond it.)
_ITEMS = Prepared(
    "devices.items_with_device", _items_queryset, project_id=-(2**62), device_uuid="\x00device", shard=32_111
)


def project_by_key(license_key: str) -> Project | None:
    """The project whose current or previous key is ``license_key`` (the lowest id if both)."""
    rows = _PROJECT.rows(license_key=license_key)
    return rows[0] if rows else None


def items_with_device(project: Project, device_uuid: str) -> list[LicenseItem]:
    """``project.items_in_order()``, each item annotated ``_device_<field>`` for the fields of
    ``DEVICE_FIELDS`` of the project's device ``device_uuid`` (None when there is none), and
    its ``project`` set to ``project`` (as the related manager would)."""
    items = _ITEMS.rows(project_id=project.pk, device_uuid=device_uuid, shard=shard_of(device_uuid))
    for item in items:
        item.project = project
    return items

"""The tables the device API writes on every request carry no index that another index of the
same table already covers (its columns a leading part of the other's): each such index is one
more write per report or per new device and serves no query the other cannot."""

from __future__ import annotations

import pytest
from django.db import connection

from devices.models import Decision, Device
from usage.models import DeviceUsageDay, UsageCount, UsageReport

HOT_TABLES = [UsageReport, UsageCount, DeviceUsageDay, Device, Decision]


def _indexes(model) -> dict[str, tuple[str, ...]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {
        name: tuple(c["columns"])
        for name, c in constraints.items()
        if (c["index"] or c["unique"] or c["primary_key"]) and c["columns"] and None not in c["columns"]
        and c.get("type") in (None, "btree", "idx")
    }  # fmt: skip


def covered(indexes: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """(index, the index that covers it) for every index whose columns lead another one."""
    return [
        (name, other)
        for name, columns in indexes.items()
        for other, longer in indexes.items()
        if other != name and len(longer) > len(columns) and longer[: len(columns)] == columns
    ]


def test_covered_finds_a_leading_prefix():
    assert covered({"a": ("x",), "b": ("x", "y"), "c": ("y",)}) == [("a", "b")]
    assert covered({"a": ("x",), "b": ("y", "x")}) == []


@pytest.mark.django_db
@pytest.mark.parametrize("model", HOT_TABLES, ids=lambda m: m.__name__)
def test_no_hot_table_index_is_covered_by_another(model):
    indexes = _indexes(model)
    assert indexes, "introspection found no index at all"
    assert covered(indexes) == []


@pytest.mark.django_db
def test_the_covering_indexes_are_there():
    """What the dropped single-column indexes served is still served: each foreign key leads one."""
    for model, column in [
        (UsageReport, "device_id"),
        (UsageReport, "item_id"),
        (UsageCount, "report_id"),
        (UsageCount, "item_id"),
        (DeviceUsageDay, "device_id"),
        (DeviceUsageDay, "item_id"),
        (Device, "project_id"),
        (Device, "item_id"),
        (Decision, "project_id"),
    ]:
        assert any(cols[0] == column for cols in _indexes(model).values()), (model.__name__, column)


@pytest.mark.django_db
def test_a_decision_is_found_by_uuid_only_within_its_project():
    """Every decision look-up by uuid names the project (decision_device_idx): no index on the
    uuid alone, one write fewer per decision."""
    assert ("device_uuid",) not in _indexes(Decision).values()
    assert ("project_id", "device_uuid", "created_at") in _indexes(Decision).values()

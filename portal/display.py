"""Values a page computes for one object and shows beside its fields.

A list page often needs, per row, something that is no column: the explanation of a decision,
the days left of a license, the admin link of an entry. ``shown`` sets them on the instance for
the template (``{{ d.explanation }}``) in one typed place, instead of assignments to attributes
the model does not declare; the object keeps its type."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def shown(obj: T, **values: object) -> T:
    """``obj`` with ``values`` as attributes for its template; a name the object already has
    (a field, a method) is refused, so a display value never hides what the model says."""
    for name, value in values.items():
        if hasattr(type(obj), name) or name in vars(obj):
            raise ValueError(f"{type(obj).__name__} already has {name!r}: pick another display name")
        setattr(obj, name, value)
    return obj

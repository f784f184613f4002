"""A what-if replay's figures as JSON (the ``what_if`` command, the item's page), and a stored
``ReplayRun`` run by the Celery task ``usage.run_replay`` with its progress (docs/insight.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from licenses.models import LicenseItem
from usage.replay.engine import Replay


def what_if(
    item: LicenseItem,
    *,
    start: datetime,
    end: datetime,
    changes: dict[str, Any],
    progress: Callable[[datetime], None] | None = None,
) -> dict[str, Any]:
    """The replay's figures as one JSON-able dict (the ``what_if`` command prints it)."""
    return Replay(item, start=start, end=end, changes=changes).run(progress=progress).as_dict()


def run_stored(run_id: int, *, now: Callable[[], datetime]) -> None:
    """Run a stored ``ReplayRun`` (the Celery task ``usage.run_replay``): its progress moves with
    the day the replay reached, its result or its error is kept. ``now`` is the clock, read when
    the run starts and ends. Claimed with a conditional update: a redelivered task runs it once."""
    from usage.models import ReplayRun

    if not ReplayRun.objects.filter(pk=run_id, status=ReplayRun.QUEUED).update(status=ReplayRun.RUNNING):
        return
    run = ReplayRun.objects.select_related("item__license").get(pk=run_id)
    span = (run.end - run.start).total_seconds() or 1.0

    def progress(at: datetime) -> None:
        percent = int(min(99, max(0, (at - run.start).total_seconds() * 100 // span)))
        ReplayRun.objects.filter(pk=run_id).update(progress=percent)

    try:
        result = what_if(run.item, start=run.start, end=run.end, changes=run.changes, progress=progress)
    except Exception as e:  # the page shows why; the worker keeps going
        ReplayRun.objects.filter(pk=run_id).update(status=ReplayRun.FAILED, error=str(e)[:500], finished_at=now())
        raise
    ReplayRun.objects.filter(pk=run_id).update(status=ReplayRun.DONE, progress=100, result=result, finished_at=now())

"""What-if replay: the recorded contacts of one item over a past window, run again through the
rule code the API uses, with some policy fields changed (docs/insight.md).

Nothing here re-derives a rule. The verdicts are the API's own functions
(``devices.verdicts.item_verdict`` for authorizations, ``usage.services._usage_verdict`` for
reports, ``usage.services.slot_verdict`` for a concurrent slot, ``active_until_for`` for how long
a contact keeps a device active, ``usage.dedup.count_sightings`` for a changed dedup interval);
the replay only gives them an in-memory state instead of the database: its own devices (unsaved
``Device`` objects), a seat book (``ReplaySeats``: the two queries ``seat_verdict`` makes, seats
held and take one), the quota counters, the slots and the dedup memory. Live data is only read.

The window is streamed in time order (decisions of authorize, release and offline registration
by ``created_at``, usage reports by ``received_at``, each with ``iterator(chunk_size=...)``) and
merged: memory holds one entry per device of the item, the slots of the last 30 days (the oldest
slot a report may name, SPEC section 6) and, for a changed dedup interval, the barcodes each
device saw within it, never the reports.

What is not policy is taken as recorded: a license's status at the time (a term refusal stays one),
the devices' requests (a device the replay refuses would in fact have stopped; its later reports
are counted apart, ``reports_without_seat``), and the state at the window's start (the devices
holding a seat then, the quota used and the overuse budget spent before it).

The modules: ``policy`` (the fields a replay may change, and the window), ``book`` (the seat book
and the dedup memory), ``stream`` (the recorded events and the result), ``engine`` (the replay),
``runs`` (the JSON of one replay, a stored run as a Celery task).
"""

from __future__ import annotations

from usage.replay.book import ReplayDedup, ReplaySeats
from usage.replay.engine import Replay
from usage.replay.policy import (
    FIELDS,
    MAX_WINDOW,
    REPLAYABLE,
    PolicyError,
    check_window,
    parse_changes,
    policy_item,
)
from usage.replay.runs import run_stored, what_if
from usage.replay.stream import Event, Outcome, Result

__all__ = [
    "FIELDS",
    "MAX_WINDOW",
    "REPLAYABLE",
    "Event",
    "Outcome",
    "PolicyError",
    "Replay",
    "ReplayDedup",
    "ReplaySeats",
    "Result",
    "check_window",
    "parse_changes",
    "policy_item",
    "run_stored",
    "what_if",
]

"""What the database's active backends wait on during a load run: ``pg_stat_activity`` sampled
every ~20 ms from a connection of its own (a thread of ``bench_api``, not the load generator),
each active client backend of the bench database counted once per sample by its wait event:
``Lock:transactionid`` and ``Lock:tuple`` (waiting for another transaction's row: the hot-row
bound), other ``Lock``, ``LWLock``, ``IO``, ``Client``, ``IPC``, or ``CPU`` (no wait event:
running or runnable). A low Lock share means the hot row is not what bounds the run."""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import contextmanager

import psycopg

INTERVAL_S = 0.02
QUERY = """SELECT wait_event_type, wait_event FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend' AND state = 'active'
AND pid <> pg_backend_pid()"""


def category(wait_event_type: str | None, wait_event: str | None) -> str:
    """A sample's class: ``CPU`` (no wait event), ``Lock:<event>``, or the wait event type."""
    if wait_event_type is None:
        return "CPU"
    if wait_event_type == "Lock":
        return f"Lock:{wait_event}"
    return wait_event_type


def shares(samples: list[tuple[float, list[tuple[str | None, str | None]]]], window: tuple[float, float]) -> dict:
    """Of the samples taken within ``window`` (monotonic seconds): how many, the mean number of
    active backends, and each class's share of the backend-samples (``lock`` all Lock classes)."""
    start, end = window
    inside = [rows for t, rows in samples if start <= t <= end]
    counts: Counter = Counter(category(*row) for rows in inside for row in rows)
    total = sum(counts.values())
    return {
        "samples": len(inside),
        "mean_active": total / len(inside) if inside else float("nan"),
        "shares": {k: v / total for k, v in counts.most_common()} if total else {},
        "lock": sum(v for k, v in counts.items() if k.startswith("Lock")) / total if total else float("nan"),
    }


class Sampler:
    """``with sampler.running(): ...`` samples while the block runs; ``shares(window)`` then."""

    def __init__(self, conninfo: str, interval: float = INTERVAL_S):
        self.conninfo = conninfo
        self.interval = interval
        self.samples: list[tuple[float, list]] = []
        self.error: BaseException | None = None

    def _loop(self, stop: threading.Event) -> None:
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                next_at = time.monotonic()
                while not stop.is_set():
                    t = time.monotonic()
                    rows = conn.execute(QUERY).fetchall()
                    self.samples.append((t, [(r[0], r[1]) for r in rows]))
                    next_at += self.interval
                    stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as exc:  # reported by running(): a sampler that died must not pass for "no waits"
            self.error = exc

    @contextmanager
    def running(self):
        self.samples = []
        stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(stop,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=10)
        if self.error is not None:
            raise RuntimeError(f"pg_stat_activity sampler failed: {self.error!r}")

    def shares(self, window: tuple[float, float]) -> dict:
        return shares(self.samples, window)

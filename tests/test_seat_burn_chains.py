"""Seat-burn chaining (devices/seat_burn.py) against the plain definition: each device, in order
of first authorization, extends the earliest-made chain of its key whose newest device is the same
client and went idle at most the gap before it. The indexed version must give the same chains as
the pass over every chain it replaced (which took minutes at 100,000 devices of one key)."""

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from devices.seat_burn import _KEY, _chain, _family, _same_client

T0 = datetime(2026, 11, 1, tzinfo=UTC)
GAP = timedelta(hours=24)


def _by_definition(devices, gap):
    chains: dict[tuple, list[list]] = {}
    for device in devices:
        key = tuple(getattr(device, f) for f in _KEY) + (_family(device.address),)
        for chain in chains.setdefault(key, []):
            tail = chain[-1]
            soon = tail.last_seen_at <= device.first_authorized_at <= tail.last_seen_at + gap
            if soon and _same_client(tail, device):
                chain.append(device)
                break
        else:
            chains[key].append([device])
    return chains


def _history(seed: int, n: int):
    rnd = random.Random(seed)
    devices = []
    for i in range(n):
        first = T0 + timedelta(hours=rnd.randrange(0, 24 * 20))
        devices.append(
            SimpleNamespace(
                pk=i,
                item_id=rnd.choice([1, 2]),
                client_type="web",
                origin=rnd.choice(["https://a.example", "https://b.example"]),
                platform="Chrome",
                sdk_version="10.0",
                device_name=rnd.choice(["", "desk", "kiosk", f"n{i}"]),
                user_agent=rnd.choice(["", "UA-1", "UA-2"]),
                address=rnd.choice([None, "192.0.2.7", "2001:db8::1"]),
                first_authorized_at=first,
                last_seen_at=first + timedelta(hours=rnd.choice([0, 1, 5, 30, 200])),
            )
        )
    devices.sort(key=lambda d: (d.first_authorized_at, d.pk))
    return devices


def _ids(chains):
    return {key: [[d.pk for d in chain] for chain in found] for key, found in chains.items()}


@pytest.mark.parametrize("seed", range(12))
def test_the_indexed_chains_are_the_definitions(seed):
    devices = _history(seed, 400)
    assert _ids(_chain(iter(devices), GAP)) == _ids(_by_definition(devices, GAP))


def test_a_gap_of_zero_and_a_long_gap_agree_too():
    devices = _history(99, 300)
    for gap in (timedelta(0), timedelta(days=30)):
        assert _ids(_chain(iter(devices), gap)) == _ids(_by_definition(devices, gap))


def test_many_devices_of_one_key_with_distinct_names_do_not_chain():
    devices = _history(5, 1)
    base = devices[0]
    fleet = [
        SimpleNamespace(**{**vars(base), "pk": i, "device_name": f"d{i}", "user_agent": "", "address": None})
        for i in range(20000)
    ]
    chains = _chain(iter(fleet), GAP)
    assert sum(len(found) for found in chains.values()) == 20000

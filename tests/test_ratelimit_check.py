"""check_rate_limit: fixed-window counts per device and per address, in locmem and in Redis."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from api.ratelimit import Rate, check_rate_limit, parse_rate

REDIS_URL = "redis://127.0.0.1:6379/3"
T0 = 1_800_000_000.0  # a multiple of 60 and of 3600


def _redis_available() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except Exception:
        return False
    return True


@pytest.fixture(params=["locmem", "redis"])
def fresh_cache(request):
    """A cache of its own for each test: a new locmem location, or Redis under a unique prefix
    (so parallel test runs sharing the Redis database never see each other's counters)."""
    prefix = f"test-{uuid.uuid4().hex}"
    if request.param == "redis":
        if not _redis_available():
            pytest.skip(f"Redis not reachable at {REDIS_URL}")
        config = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": prefix}
    else:
        config = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": prefix}
    with override_settings(CACHES={"default": config}):
        yield request.param
        if request.param == "locmem":
            cache.clear()


def hit(n=1, *, key="K", device="d1", address="10.0.0.1", now=T0):
    return [check_rate_limit(license_key=key, device_uuid=device, address=address, now=now) for _ in range(n)]


@pytest.mark.parametrize(
    "text, rate",
    [
        ("60/m", Rate(60, 60)),
        ("6000/m", Rate(6000, 60)),
        ("5/s", Rate(5, 1)),
        ("100/h", Rate(100, 3600)),
        ("1000/d", Rate(1000, 86400)),
        (" 10 / 5s ", Rate(10, 5)),
        ("30/min", Rate(30, 60)),
        ("0", None),
        ("0/m", None),
        ("", None),
    ],
)
def test_it_parses_rates(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["60", "sixty/m", "60/w", "60/0m", "-1/m", "60/m/s"])
def test_it_refuses_bad_rates_loudly(text):
    with pytest.raises(ImproperlyConfigured):
        parse_rate(text, setting="API_RATE_LIMIT")


@override_settings(API_RATE_LIMIT="60/m", API_RATE_LIMIT_ADDRESS="0")
def test_it_allows_60_a_minute_per_device_then_says_when_to_retry(fresh_cache):
    assert hit(60, now=T0 + 15) == [None] * 60
    assert hit(now=T0 + 15) == [45]
    assert hit(now=T0 + 59.2) == [1]
    # A new minute is a new window.
    assert hit(60, now=T0 + 60) == [None] * 60
    assert hit(now=T0 + 60) == [60]


@override_settings(API_RATE_LIMIT="3/m", API_RATE_LIMIT_ADDRESS="0")
def test_it_counts_each_device_on_its_own(fresh_cache):
    assert hit(3, device="a") == [None] * 3
    assert hit(device="a") == [60]
    assert hit(3, device="b") == [None] * 3
    # The same device_uuid under another license key is another device.
    assert hit(3, key="other", device="a") == [None] * 3
    assert hit(key="other", device="a") == [60]


@override_settings(API_RATE_LIMIT="0", API_RATE_LIMIT_ADDRESS="5/s")
def test_it_limits_an_address_across_devices(fresh_cache):
    assert [hit(device=f"d{i}", now=T0 + 0.5)[0] for i in range(5)] == [None] * 5
    assert hit(device="d99", now=T0 + 0.5) == [1]
    assert hit(device="d99", address="10.0.0.2", now=T0 + 0.5) == [None]
    assert hit(device="d99", now=T0 + 1) == [None]


@override_settings(API_RATE_LIMIT="0", API_RATE_LIMIT_ADDRESS="0")
def test_zero_turns_both_off(fresh_cache):
    assert hit(500) == [None] * 500


@override_settings(API_RATE_LIMIT="2/m", API_RATE_LIMIT_ADDRESS="4/h")
def test_it_answers_the_longest_wait_when_both_are_exceeded(fresh_cache):
    assert hit(2, now=T0 + 30) == [None, None]
    assert hit(now=T0 + 30) == [30]  # device limit only
    assert hit(device="d2", now=T0 + 30) == [None]  # the 4th request of the address this hour
    assert hit(device="d3", now=T0 + 30) == [3570]  # address limit: until the hour ends


def test_it_reads_the_settings_at_call_time(fresh_cache):
    with override_settings(API_RATE_LIMIT="1/m", API_RATE_LIMIT_ADDRESS="0"):
        assert hit(2) == [None, 60]
    with override_settings(API_RATE_LIMIT="0", API_RATE_LIMIT_ADDRESS="0"):
        assert hit(2) == [None, None]


@override_settings(API_RATE_LIMIT="50/m", API_RATE_LIMIT_ADDRESS="0")
def test_it_never_lets_more_through_under_concurrency(fresh_cache):
    results: list[int | None] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def worker():
        barrier.wait()
        mine = hit(10, now=T0 + 1)
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 160
    assert results.count(None) == 50
    assert set(results) - {None} == {59}


@override_settings(API_RATE_LIMIT="1/s", API_RATE_LIMIT_ADDRESS="0")
def test_it_sets_an_expiry_on_its_counters(fresh_cache):
    hit()
    if fresh_cache == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = client.keys(f"{cache.key_prefix}:*rl:dev:*")
        assert keys
        assert all(0 < client.ttl(k) <= 11 for k in keys)  # 1 s window + 10 s margin
    else:
        now = time.time()
        assert cache._expire_info
        assert all(now < exp <= now + 11 for exp in cache._expire_info.values())


@override_settings(API_RATE_LIMIT="60/m", API_RATE_LIMIT_ADDRESS="6000/m")
def test_in_redis_both_windows_of_a_request_cost_one_round_trip(fresh_cache, monkeypatch):
    if fresh_cache != "redis":
        pytest.skip("Redis only")
    from redis.connection import Connection

    sent = []
    real = Connection.send_packed_command
    monkeypatch.setattr(Connection, "send_packed_command", lambda self, *a, **k: sent.append(1) or real(self, *a, **k))
    hit(1)  # connects (the first packets are the handshake)
    sent.clear()
    assert hit(3) == [None, None, None]
    assert len(sent) == 3  # one per request: the device's and the address's windows together
    from api.ratelimit import _window

    key, _, _ = _window("dev", "K\x00d1", Rate(60, 60), T0)
    assert cache.get(key) == 4  # the cache's own key and value: cache.get and cache.incr still read it


@override_settings(API_RATE_LIMIT="3/m", API_RATE_LIMIT_ADDRESS="0")
def test_in_redis_the_count_survives_the_server_forgetting_its_script(fresh_cache):
    """The windows are counted by a script called by its SHA1 (api.ratelimit._COUNT_SCRIPT): a
    Redis restarted or flushed no longer knows it, and the next request loads it again and
    counts on, instead of failing soft."""
    if fresh_cache != "redis":
        pytest.skip("Redis only")
    import redis

    from api.ratelimit import degradation

    assert hit(2) == [None, None]
    redis.Redis.from_url(REDIS_URL).script_flush()
    errors = degradation["errors"]
    assert hit(2) == [None, 60 - int(T0) % 60]
    assert degradation["errors"] == errors


@override_settings(API_RATE_LIMIT="2/m", API_RATE_LIMIT_ADDRESS="0")
def test_in_redis_a_server_refusing_scripts_makes_the_limits_count_per_process(fresh_cache, monkeypatch):
    """docs/operations.md, REDIS_URL: where EVALSHA is refused (scripting disabled), the request
    is counted in this process instead and the failure shows in ``degradation`` (/healthz)."""
    if fresh_cache != "redis":
        pytest.skip("Redis only")
    import redis

    from api.ratelimit import degradation, reset_degradation

    def refused(self, *args, **kwargs):
        raise redis.ResponseError("unknown command 'EVALSHA'")

    monkeypatch.setattr(redis.Redis, "evalsha", refused)
    reset_degradation()
    try:
        assert hit(3) == [None, None, 60 - int(T0) % 60]  # counted locally, the limit still holds
        assert degradation["errors"] == 1 and "EVALSHA" in str(degradation["last_error"])
    finally:
        reset_degradation()

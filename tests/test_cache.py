"""The Redis cache backend that keeps one client per pool."""

from __future__ import annotations

import pytest
import redis

from otp.cache import RedisCache

URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def cache():
    try:
        redis.Redis.from_url(URL, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip("needs Redis on 127.0.0.1:6379")
    backend = RedisCache(URL, {"KEY_PREFIX": "otp-cache-test"})
    yield backend
    backend.clear()


def test_it_is_a_working_cache_with_atomic_incr(cache):
    cache.set("a", 1, timeout=10)
    assert cache.get("a") == 1
    assert cache.add("n", 0, timeout=10) and not cache.add("n", 5, timeout=10)
    assert [cache.incr("n") for _ in range(3)] == [1, 2, 3]
    assert cache.get_many(["a", "missing"]) == {"a": 1}


def test_one_client_per_pool(cache):
    client = cache._cache
    assert client.get_client(write=True) is client.get_client(write=True)
    assert client.get_client() is client.get_client(write=True)  # a single server: one pool


def test_incr_of_a_missing_key_is_an_error_and_creates_nothing(cache):
    with pytest.raises(ValueError):
        cache.incr("never-set")
    assert cache.get("never-set") is None


def test_incr_keeps_the_expiry_and_takes_a_delta(cache):
    cache.add("w", 0, timeout=30)
    assert cache.incr("w", 5) == 5
    raw = redis.Redis.from_url(URL)
    assert 0 < raw.ttl(cache.make_and_validate_key("w")) <= 30


def test_incr_survives_a_server_that_forgot_its_scripts(cache):
    cache.add("s", 0, timeout=10)
    assert cache.incr("s") == 1
    redis.Redis.from_url(URL).script_flush()
    assert cache.incr("s") == 2


def test_incr_is_one_round_trip(cache):
    cache.add("r", 0, timeout=10)
    cache.incr("r")  # loads the script
    client = cache._cache.get_client(write=True)
    sent = []
    original = client.execute_command

    def counting(*args, **kwargs):
        sent.append(args[0])
        return original(*args, **kwargs)

    client.execute_command = counting
    try:
        assert cache.incr("r") == 2
    finally:
        del client.execute_command
    assert sent == ["EVALSHA"]


def test_parallel_incrs_lose_no_count(cache):
    from concurrent.futures import ThreadPoolExecutor

    cache.add("p", 0, timeout=10)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: cache.incr("p"), range(400)))
    assert cache.get("p") == 400

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

"""The Redis cache backend that keeps one client per pool."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

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


def test_one_client_per_configuration(cache):
    same = RedisCache(URL, {"KEY_PREFIX": "another-prefix"})
    assert same.redis_client is cache.redis_client  # KEY_PREFIX is not the connection's
    assert RedisCache(URL, {"OPTIONS": {"socket_timeout": 2}}).redis_client is not cache.redis_client


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


def commands_sent(call):
    """The Redis commands ``call()`` sends, through any client, and its result."""
    sent = []
    original = redis.Redis.execute_command

    def counting(client, *args, **kwargs):
        sent.append(args[0])
        return original(client, *args, **kwargs)

    setattr(redis.Redis, "execute_command", counting)  # noqa: B010 (a patch mypy would refuse as an assignment)
    try:
        return sent, call()
    finally:
        setattr(redis.Redis, "execute_command", original)  # noqa: B010


def test_incr_is_one_round_trip(cache):
    cache.add("r", 0, timeout=10)
    cache.incr("r")  # loads the script
    assert commands_sent(lambda: cache.incr("r")) == (["EVALSHA"], 2)


def test_count_creates_the_counter_with_its_expiry_and_never_extends_it(cache):
    raw = redis.Redis.from_url(URL)
    key = cache.make_and_validate_key("c")
    assert cache.count("c", 30) == 1
    assert 0 < raw.ttl(key) <= 30
    raw.expire(key, 5)
    assert [cache.count("c", 30) for _ in range(2)] == [2, 3]
    assert 0 < raw.ttl(key) <= 5
    assert cache.get("c") == 3  # an ordinary integer to the rest of the cache API


def test_count_is_one_round_trip_and_atomic(cache):
    from concurrent.futures import ThreadPoolExecutor

    cache.count("k", 10)  # loads the script
    assert commands_sent(lambda: cache.count("k", 10)) == (["EVALSHA"], 2)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: cache.count("k", 10), range(400)))
    assert cache.get("k") == 402


def test_parallel_incrs_lose_no_count(cache):
    from concurrent.futures import ThreadPoolExecutor

    cache.add("p", 0, timeout=10)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: cache.incr("p"), range(400)))
    assert cache.get("p") == 400


def test_the_ip_limit_counts_each_request_in_one_round_trip_under_its_documented_key(cache, settings, rf):
    import time_machine
    from django.core.cache import caches

    from otp.exceptions import RateLimited
    from otp.limits import ip as iplimits

    settings.CACHES = {"default": {"BACKEND": "otp.cache.RedisCache", "LOCATION": URL, "KEY_PREFIX": "otp-cache-test"}}
    settings.OTP = {**settings.OTP, "IP_SEND_RATE": "4/m"}
    request = rf.post("/send-otp", REMOTE_ADDR="203.0.113.9")
    with time_machine.travel(1_765_152_030, tick=False):  # 30 s into a minute's window
        iplimits.check_ip_limit(request, iplimits.SEND)  # loads the script
        sent, _ = commands_sent(lambda: iplimits.check_ip_limit(request, iplimits.SEND))
        assert sent == ["EVALSHA"]
        assert caches["default"].get("otp:ip:otp.send:4/60s:1765152000:203.0.113.9") == 2
        iplimits.check_ip_limit(request, iplimits.SEND)
        iplimits.check_ip_limit(request, iplimits.SEND)
        with pytest.raises(RateLimited) as refused:
            iplimits.check_ip_limit(request, iplimits.SEND)
        assert refused.value.retry_after == 60  # the 30 s left of the window, rounded up to a minute
        other = rf.post("/send-otp", REMOTE_ADDR="203.0.113.10")
        iplimits.check_ip_limit(other, iplimits.SEND)  # another IP, another bucket
    with time_machine.travel(1_765_152_060, tick=False):  # the next window
        iplimits.check_ip_limit(request, iplimits.SEND)


def test_the_backends_of_all_threads_share_one_client_and_its_connections(settings):
    """Django builds a cache backend per thread; each used to open a pool and connections of its own."""
    import threading
    import uuid

    from django.core.cache import caches

    name = f"otp-shared-{uuid.uuid4().hex[:12]}"
    options = {"client_name": name}  # tags this configuration's connections on the server
    settings.CACHES = {"default": {"BACKEND": "otp.cache.RedisCache", "LOCATION": URL, "OPTIONS": options}}
    try:
        redis.Redis.from_url(URL, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip("needs Redis on 127.0.0.1:6379")
    clients = []

    def use_the_cache() -> None:
        cache = caches["default"]
        assert isinstance(cache, RedisCache)
        cache.set("shared", 1, timeout=10)  # Django's client
        cache.count("counted", 10)  # the scripts' client
        clients.append((cache, cache.redis_client))

    for _ in range(8):  # one after another: a shared pool needs a single connection
        thread = threading.Thread(target=use_the_cache)
        thread.start()
        thread.join()
    assert len({id(backend) for backend, _ in clients}) == 8  # Django's per-thread backends...
    assert len({id(client) for _, client in clients}) == 1  # ... share one client
    connected = [c for c in redis.Redis.from_url(URL).client_list() if c.get("name") == name]
    assert len(connected) == 1
    other = RedisCache(URL.replace("/15", "/14"), {"OPTIONS": options})
    assert other.redis_client is not clients[0][1]  # another server is another client


class SilentServer:
    """Accepts connections and reads what comes, never answers: a Redis that stopped answering."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)  # kept open, never read from or written to

    def close(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def seconds_to_fail(backend: RedisCache) -> float:
    """How long a cache read takes to fail; at most 10 s are waited for."""
    outcome: dict[str, Any] = {}

    def read() -> None:
        started = time.monotonic()
        try:
            backend.get("key")
        except redis.TimeoutError:
            outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    assert "seconds" in outcome, "the read neither answered nor timed out"
    return outcome["seconds"]


@pytest.mark.parametrize(
    ("location", "options", "bound"),
    [
        ("", {}, 1.0),  # the backend's own default
        ("?socket_timeout=0.2", {}, 0.2),
        ("", {"socket_timeout": 0.3}, 0.3),
    ],
)
def test_a_redis_that_stops_answering_fails_a_call_in_bounded_time(silent_server, location, options, bound):
    backend = RedisCache(silent_server.url + location, {"OPTIONS": options})
    elapsed = seconds_to_fail(backend)
    assert bound * 0.9 <= elapsed < bound + 1.0, elapsed

"""Django's Redis cache backend, without a new redis-py client on every call.

``django.core.cache.backends.redis.RedisCache`` builds a ``redis.Redis``
object for each cache operation; with redis-py 5+ that fills a dictionary of
some 170 response callbacks every time, which made up about a tenth of the
CPU of an OTP request (the IP limiter and the circuit breaker make several
cache calls each). This backend keeps one client per connection pool, and
one pool per process for each configuration (Django's per-thread backends
each opened their own); clients and pools are thread-safe. Connects and
replies time out after a second unless configured otherwise.
``incr`` is one round trip (a server-side script) instead of Django's two
(``EXISTS`` then ``INCRBY``), and ``count`` adds one to a counter that it
creates with an expiry when missing, also in one round trip (the IP limits'
fixed windows, see :mod:`otp.iplimits`).

    CACHES = {"default": {"BACKEND": "otp.cache.RedisCache", "LOCATION": "redis://..."}}
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.utils.functional import cached_property

# Django's incr() contract: a missing key is an error, never created.
_INCR_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
"""
# A window counter: created with its expiry by the first count, never extended;
# then the values of any further keys, read in the same round trip.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
if #KEYS == 1 then
  return {count}
end
return {count, unpack(redis.call('MGET', unpack(KEYS, 2)))}
"""


# The ids Redis gives the scripts (their SHA-1), so EVALSHA needs no SCRIPT LOAD first.
_SHA1 = {
    script: hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest() for script in (_INCR_EXISTING, _COUNT)
}


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # imports redis, which the app alone does not need
        from redis.exceptions import NoScriptError

        self._no_script = NoScriptError
        self._clients: dict[int, Any] = {}

    def _run(self, script: str, keys: list[Any], *args: Any) -> Any:
        # EVALSHA, and EVAL when the server lost the script (a restart, SCRIPT
        # FLUSH), which also loads it again. redis-py's Script object does the
        # same through several more layers, which cost 12-20 % more CPU per call.
        client = self.get_client(keys[0], write=True)
        try:
            return client.execute_command("EVALSHA", _SHA1[script], len(keys), *keys, *args)
        except self._no_script:
            return client.execute_command("EVAL", script, len(keys), *keys, *args)

    def incr(self, key: Any, delta: int) -> int:
        value = self._run(_INCR_EXISTING, [key], delta)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return int(value)

    def count(self, key: Any, timeout: int, reads: list[Any]) -> tuple[int, list[Any]]:
        count, *values = self._run(_COUNT, [key, *reads], timeout)
        loads = self._serializer.loads  # type: ignore[attr-defined]  # set by Django, untyped in the stubs
        return int(count), [None if value is None else loads(value) for value in values]

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # Django's own (untyped in the stubs) helpers: the pool, and the redis.Redis class.
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))  # type: ignore[attr-defined]
        return client


# Django builds a cache backend per thread, and each built its own client,
# connection pool and connections: 64 threads per worker opened 64 pools.
# Backends of one configuration now share one client per process.
_shared_clients: dict[tuple[Any, ...], ReusingRedisCacheClient] = {}
_shared_clients_lock = threading.Lock()


# A Redis that stops answering without a reset (a partition, a host gone)
# holds every request that counts a limit for as long as redis-py waits: 5 s
# per call from redis-py 8, without bound before it. A healthy Redis answers
# in a millisecond, so one second bounds each connect and each reply. OPTIONS,
# or the LOCATION's query string (redis://...?socket_timeout=2), set others.
DEFAULT_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
        self._options = {**DEFAULT_TIMEOUTS, **self._options}  # type: ignore[has-type]  # Django's, untyped

    @cached_property
    def _cache(self) -> ReusingRedisCacheClient:
        servers, options = self._servers, self._options  # type: ignore[attr-defined]  # Django's, untyped in the stubs
        config = (self._class, tuple(servers), repr(sorted(options.items())))
        with _shared_clients_lock:
            client = _shared_clients.get(config)
            if client is None:
                client = _shared_clients[config] = self._class(servers, **options)
        return client

    def count(self, key: str, timeout: int, version: int | None = None) -> int:
        """Add one to the counter ``key`` and return it; a missing one starts at 1 and lives ``timeout`` seconds."""
        return self.count_and_get(key, timeout, (), version=version)[0]

    def count_and_get(
        self, key: str, timeout: int, reads: Sequence[str], version: int | None = None
    ) -> tuple[int, dict[str, Any]]:
        """:meth:`count`, and ``get_many(reads)`` in the same round trip."""
        count, values = self._cache.count(
            self.make_and_validate_key(key, version=version),
            timeout,
            [self.make_and_validate_key(read, version=version) for read in reads],
        )
        return count, {read: value for read, value in zip(reads, values, strict=True) if value is not None}

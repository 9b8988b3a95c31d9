"""Django's Redis cache backend, with one connection pool per configuration and one-round-trip counters.

Django builds a cache backend in every thread, and each built a connection
pool of its own: 64 threads per worker opened 64 pools. This backend gives
the backends of one configuration (LOCATION and OPTIONS) one pool per process,
through Django's ``pool_class`` option. Connects and replies time out after a
second unless configured otherwise.

``incr`` is one round trip (a server-side script) instead of Django's two
(``EXISTS`` then ``INCRBY``), and ``count`` adds one to a counter that it
creates with an expiry when missing, also in one round trip (the IP limits'
fixed windows, see :mod:`otp.limits.ip`). Both run on one redis-py client per
pool, made with redis-py's public API; every other operation is Django's own.

    CACHES = {"default": {"BACKEND": "otp.cache.RedisCache", "LOCATION": "redis://..."}}
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.utils.functional import cached_property
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    import redis
    from redis.commands.core import Script

# Django's incr() contract: a missing key is an error, never created.
_INCR_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
"""
# A window counter: created with its expiry by the first count, never extended.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
"""

# A Redis that stops answering without a reset (a partition, a host gone)
# holds every request that counts a limit for as long as redis-py waits: 5 s
# per call from redis-py 8, without bound before it. A healthy Redis answers
# in a millisecond, so one second bounds each connect and each reply. OPTIONS,
# or the LOCATION's query string (redis://...?socket_timeout=2), set others.
DEFAULT_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}

# OPTIONS that Django's client reads itself; the others configure the pool.
_CLIENT_OPTIONS = ("serializer", "pool_class")

_clients: dict[tuple[str, str], redis.Redis] = {}
_clients_lock = threading.Lock()


def shared_client(url: str, options: dict[str, Any]) -> redis.Redis:
    """The process's redis-py client, and with it its pool, for one server URL and the cache's OPTIONS."""
    config = (url, repr(sorted(options.items())))
    client = _clients.get(config)
    if client is None:
        with _clients_lock:
            client = _clients.get(config)
            if client is None:
                client = _clients[config] = _make_client(url, options)
    return client


def _make_client(url: str, options: dict[str, Any]) -> redis.Redis:
    import redis  # only a site that configures this backend needs redis-py

    pool_options = {name: value for name, value in options.items() if name not in _CLIENT_OPTIONS}
    if isinstance(pool_options.get("parser_class"), str):
        pool_options["parser_class"] = import_string(pool_options["parser_class"])
    pool_class = options.get("pool_class") or redis.ConnectionPool
    if isinstance(pool_class, str):
        pool_class = import_string(pool_class)
    # As in Django's client, the URL's query string wins over OPTIONS.
    return redis.Redis(connection_pool=pool_class.from_url(url, **pool_options))


class _SharedPools:
    """Django's ``pool_class``: Django's client asks it for a server's pool and gets the shared one."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def from_url(self, url: str, **_pool_options: Any) -> redis.ConnectionPool:
        # Django passes the OPTIONS it was given, less its own: the same configuration.
        return shared_client(url, self.options).connection_pool


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        options = {**DEFAULT_TIMEOUTS, **params.get("OPTIONS", {})}
        super().__init__(server, {**params, "OPTIONS": {**options, "pool_class": _SharedPools(options)}})
        # Django writes to the first server of a LOCATION; so do the scripts.
        servers = re.split("[;,]", server) if isinstance(server, str) else server
        self.redis_url = servers[0]
        self.redis_options = options

    @property
    def redis_client(self) -> redis.Redis:
        """The redis-py client this configuration shares in this process."""
        return shared_client(self.redis_url, self.redis_options)

    @cached_property
    def _incr_script(self) -> Script:
        return self.redis_client.register_script(_INCR_EXISTING)

    @cached_property
    def _count_script(self) -> Script:
        return self.redis_client.register_script(_COUNT)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        value = self._incr_script(keys=[self.make_and_validate_key(key, version=version)], args=[delta])
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return int(value)

    def count(self, key: str, timeout: int, version: int | None = None) -> int:
        """Add one to the counter ``key`` and return it; a missing one starts at 1 and lives ``timeout`` seconds."""
        return int(self._count_script(keys=[self.make_and_validate_key(key, version=version)], args=[timeout]))

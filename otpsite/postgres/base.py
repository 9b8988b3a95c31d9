"""Django's PostgreSQL backend, with each pooled connection checked on check-out, for free.

Django hands out psycopg's pooled connections unchecked unless
``CONN_HEALTH_CHECKS`` is on, and then every check-out costs a round trip to
the server. After a database restart or a network reset, every connection
left in the pool is dead and each would fail one request. An idle connection
has nothing to read, so a readable socket means the server closed it (or the
network reset it): that connection is discarded, the pool opens another in
its place, and the next one is taken. The check is one ``poll()``.

A connection that died silently (a peer gone without a reset) still fails
its request; only a round trip could tell.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db.backends.postgresql import base

from otp.net import has_input


def is_idle_and_open(connection: psycopg.Connection[Any]) -> bool:
    """True when an idle connection is open and the server has said nothing on it."""
    if connection.closed:
        return False
    try:
        return not has_input(connection.fileno())
    except (psycopg.Error, OSError, ValueError):
        return False


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        pool = self.pool
        if pool is None:
            return connection
        # The pool holds at most max_size dead connections.
        for _ in range(pool.max_size):
            if is_idle_and_open(connection):
                return connection
            connection.close()
            pool.putconn(connection)  # a closed one is discarded and replaced
            connection = super().get_new_connection(conn_params)
        return connection

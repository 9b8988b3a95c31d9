"""A database or a Redis that vanishes without a word: every packet to it lost, no reset.

The site reaches PostgreSQL (or Redis) through a proxy on the far end of a
veth link into a network namespace of the test's own, and the test takes the
link down, as a partition or a crashed host would. Unbounded, a request would
wait for the kernel's retransmission limit (some 15 minutes) or, for a query
already sent and acknowledged, forever; a Redis call for redis-py's default.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import (
    TcpProxy,
    assert_no_dead_connection_used,
    assert_unavailable,
    wait_until_serving,
)

pytestmark = pytest.mark.postgres

NETWORK_TIMEOUT = 2  # DATABASE_NETWORK_TIMEOUT of these sites, in seconds
CLIENT_TIMEOUT = 30  # the test's own patience: far past any bound the site keeps


@pytest.fixture
def pg_over_link(droppable_link, e2e_database) -> Iterator[TcpProxy]:
    proxy = TcpProxy((e2e_database.server["host"], e2e_database.server["port"]), droppable_link.listen())
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def redis_over_link(droppable_link) -> Iterator[TcpProxy]:
    proxy = TcpProxy(("127.0.0.1", 6379), droppable_link.listen())
    try:
        yield proxy
    finally:
        proxy.close()


def start_site_over_link(start_site, e2e_database, proxy: TcpProxy, **values: str):
    return start_site(
        DATABASE_URL=e2e_database.url(proxy.port, host=proxy.host),
        DATABASE_NETWORK_TIMEOUT=str(NETWORK_TIMEOUT),
        DATABASE_POOL_TIMEOUT="1",
        **values,
    )


def database_errors(site, request_id: str) -> list[str]:
    return [e["error"] for e in site.events(request_id) if e.get("event") == "otp_database_error"]


def test_a_database_that_vanishes_fails_a_send_in_bounded_time(
    start_site, droppable_link, pg_over_link, emulator, e2e_database, new_phone, measure
):
    site = start_site_over_link(start_site, e2e_database, pg_over_link)
    assert site.send(new_phone()).status_code == 200  # the pool holds connections over the link
    emulator.plan.reset_counts()
    phone = new_phone()

    droppable_link.drop()
    started = time.monotonic()
    response = site.send(phone, request_id="e2e-db-vanished", timeout=CLIENT_TIMEOUT)
    elapsed = time.monotonic() - started
    assert_unavailable(response, code="temporarily_unavailable")
    measure("db_vanished_503_seconds", elapsed)
    assert elapsed < NETWORK_TIMEOUT + 1.5, elapsed
    assert emulator.calls("send") == 0  # no SMS without a record of it
    assert database_errors(site, "e2e-db-vanished") in (["OperationalError"], ["PoolTimeout"])

    droppable_link.restore()
    assert_no_dead_connection_used(wait_until_serving(site, new_phone))
    assert e2e_database.attempts(phone) == []


def wait_for_lock_waiter(e2e_database, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not e2e_database.rows(
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ):
        assert time.monotonic() < deadline, "the send never reached the locked row"
        time.sleep(0.02)


def test_a_database_that_vanishes_while_a_query_waits_fails_it_in_bounded_time(
    start_site, droppable_link, pg_over_link, emulator, e2e_database, new_phone, measure
):
    # The server has the send's statement (it waits on a row lock) when the
    # link goes: nothing is unacknowledged, so only keepalive probes notice.
    site = start_site_over_link(start_site, e2e_database, pg_over_link, DATABASE_LOCK_TIMEOUT_MS="60000")
    phone = new_phone()
    outcome: dict[str, Any] = {}
    with e2e_database.phone_row_locked(phone):

        def send() -> None:
            try:
                outcome["response"] = site.send(phone, request_id="e2e-db-vanished-waiting", timeout=CLIENT_TIMEOUT)
            except requests.RequestException as err:
                outcome["error"] = err

        sender = threading.Thread(target=send)
        sender.start()
        wait_for_lock_waiter(e2e_database)
        droppable_link.drop()
        dropped = time.monotonic()
        sender.join(CLIENT_TIMEOUT + 5)
        elapsed = time.monotonic() - dropped
    assert "response" in outcome, outcome  # not still waiting when the client gave up
    assert_unavailable(outcome["response"], code="temporarily_unavailable")
    measure("db_vanished_mid_query_503_seconds", elapsed)
    assert elapsed < NETWORK_TIMEOUT + 2, elapsed
    assert emulator.calls("send") == 0
    assert database_errors(site, "e2e-db-vanished-waiting") == ["OperationalError"]


def test_a_redis_that_vanishes_fails_a_send_in_bounded_time(
    start_site, droppable_link, redis_over_link, redis_url, emulator, new_phone, measure
):
    # The site's own cache backend, with its default timeouts; the IP limit counts in Redis.
    number = redis_url.rsplit("/", 1)[1]
    site = start_site(
        REDIS_URL=f"redis://{redis_over_link.host}:{redis_over_link.port}/{number}", OTP_IP_SEND_RATE="1000/h"
    )
    assert site.send(new_phone()).status_code == 200
    emulator.plan.reset_counts()

    droppable_link.drop()
    started = time.monotonic()
    response = site.send(new_phone(), request_id="e2e-redis-vanished", timeout=CLIENT_TIMEOUT)
    elapsed = time.monotonic() - started
    assert_unavailable(response, code="temporarily_unavailable")  # the limiter fails closed
    measure("redis_vanished_503_seconds", elapsed)
    assert elapsed < 3.5, elapsed  # a second per Redis call the send makes before it gives up
    assert emulator.calls("send") == 0
    (event,) = [e for e in site.events("e2e-redis-vanished") if e.get("event") == "otp_provider_error"]
    assert (event["operation"], event["error"]) == ("ip_limit", "TimeoutError")

    droppable_link.restore()
    wait_until_serving(site, new_phone)

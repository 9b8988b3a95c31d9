"""A slow upstream under a storm of sends must not take the rest of the site down with it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
import requests

from tests.e2e.conftest import phone_book

pytestmark = pytest.mark.postgres

CLIENTS = 200
UPSTREAM_LATENCY_MS = 3000
STORM_SECONDS = 6.0
WORKERS = 2
THREADS = 256  # per worker: even if one worker accepts every client, none waits in its queue
SLOTS = 8  # PROVIDER_MAX_CONCURRENCY, per worker
READ_TIMEOUT = 5
POOL_TIMEOUT = 2


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


#: A send's (status, code), or the name of the exception that ended it.
SendOutcome = tuple[int, Any] | str


class Storm:
    """CLIENTS threads sending in a loop, and probes timing /healthz and /admin/login/."""

    def __init__(self, site, phones: list[str]) -> None:
        self.site = site
        self.phones = phones
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sends: Counter[SendOutcome] = Counter()
        self.send_seconds: list[float] = []
        self.probes: dict[str, list[tuple[float, int]]] = {"/healthz": [], "/admin/login/": []}
        self.health_bodies: list[dict[str, object]] = []
        #: Set by the fixture once the storm is over.
        self.elapsed = 0.0
        self.upstream = 0

    def client(self, phone: str) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    response = self.site.send(phone, session=session, timeout=15)
                    status: SendOutcome = (response.status_code, response.json().get("code"))
                except requests.RequestException as err:
                    status = type(err).__name__
                with self.lock:
                    self.sends[status] += 1
                    self.send_seconds.append(time.monotonic() - started)

    def probe(self, path: str) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    response = session.get(self.site.base + path, timeout=10)
                    status = response.status_code
                    if path == "/healthz":
                        self.health_bodies.append(response.json())
                except requests.RequestException:
                    status = 0
                self.probes[path].append((time.monotonic() - started, status))
                time.sleep(0.05)

    def run(self, seconds: float) -> None:
        threads = [threading.Thread(target=self.client, args=(phone,), daemon=True) for phone in self.phones]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # every client is in
        probes = [threading.Thread(target=self.probe, args=(path,), daemon=True) for path in self.probes]
        for thread in probes:
            thread.start()
        time.sleep(seconds)
        self.stop.set()
        for thread in probes + threads:
            thread.join(20)


@pytest.fixture(scope="module")
def storm(launch, emulator):
    """One storm for the module: 2 workers x 256 threads, 8 provider slots per worker, 3 s upstream."""
    site = launch(
        "bulkhead",
        GUNICORN_WORKERS=str(WORKERS),
        GUNICORN_THREADS=str(THREADS),
        INFOBIP_READ_TIMEOUT=str(READ_TIMEOUT),
        DATABASE_POOL_TIMEOUT=str(POOL_TIMEOUT),
        OTP_PROVIDER_MAX_CONCURRENCY=str(SLOTS),
        OTP_PROVIDER_QUEUE_TIMEOUT_SECONDS="0.5",
    )
    try:
        emulator.latency(UPSTREAM_LATENCY_MS, route="send")
        result = Storm(site, phone_book.many(CLIENTS))
        started = time.monotonic()
        result.run(STORM_SECONDS)
        result.elapsed = time.monotonic() - started
        result.upstream = emulator.calls("send")
        yield result
    finally:
        emulator.latency(0, route="send")
        site.stop()


def probe_stats(storm, path):
    seconds = [s for s, _ in storm.probes[path]]
    return p95(seconds), max(seconds), Counter(status for _, status in storm.probes[path])


def test_bulkhead_bounds_the_upstream_and_keeps_other_pages_up(storm, measure):
    sends: Counter[int | str] = Counter()
    for key, count in storm.sends.items():
        sends[key if isinstance(key, str) else key[0]] += count
    measure("storm_sends", sum(sends.values()))
    measure("storm_send_p95_seconds", p95(storm.send_seconds))
    # Every send got an answer: a success or a JSON 503, never a 500 or a dropped connection.
    assert set(sends) <= {200, 503}, storm.sends
    assert sends[200] >= 1 and sends[503] > sends[200]
    # At most SLOTS provider calls per worker at once: each takes the upstream's latency.
    rounds = storm.elapsed / (UPSTREAM_LATENCY_MS / 1000) + 1
    assert storm.upstream <= WORKERS * SLOTS * rounds, storm.upstream
    # Every upstream call is a success, except an SMS whose row could not be
    # updated afterwards (a database 503, logged as an orphan).
    orphans_at_most = storm.sends[(503, "temporarily_unavailable")]
    assert sends[200] <= storm.upstream <= sends[200] + orphans_at_most
    # A page that needs no provider answers at once.
    admin_p95, admin_max, admin_statuses = probe_stats(storm, "/admin/login/")
    measure("storm_admin_p95_seconds", admin_p95)
    measure("storm_admin_max_seconds", admin_max)
    assert set(admin_statuses) == {200} and admin_p95 < 1.0, (admin_p95, admin_statuses)
    # A refused send is answered within the pool wait plus the slot wait, give or take a loaded machine.
    assert p95(storm.send_seconds) < READ_TIMEOUT + POOL_TIMEOUT + 2


def test_healthz_stays_responsive_during_the_storm(storm, measure):
    health_p95, health_max, statuses = probe_stats(storm, "/healthz")
    measure("storm_healthz_p95_seconds", health_p95)
    databases = Counter(body.get("database") for body in storm.health_bodies)
    assert set(statuses) == {200} and health_p95 < 1.0, (health_p95, statuses, databases)

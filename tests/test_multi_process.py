"""Two server processes share their limits: IP buckets in Redis, phone limits in the database."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis
import requests

from tests.test_site import ROOT, free_port, manage, site_env, wait_until_serving

# Each test starts processes of its own: seconds, not milliseconds.
pytestmark = pytest.mark.slow

REDIS_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def redis_db():
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("needs Redis on 127.0.0.1:6379")
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def two_servers(tmp_path, redis_db):
    env = {
        "DEBUG": "1",
        "SECURE_SSL_REDIRECT": "0",  # runserver speaks plain http
        "REDIS_URL": REDIS_URL,
        "OTP_IP_SEND_RATE": "4/15m",
        "OTP_MAX_SENDS_PER_PREFIX_PER_HOUR": "off",
    }
    assert manage(tmp_path, "migrate", "-v0", **env).returncode == 0
    processes, bases = [], []
    for index in range(2):
        port = free_port()
        log = (tmp_path / f"server{index}.log").open("w")
        processes.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                cwd=ROOT,
                env=site_env(tmp_path, **env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        bases.append(f"http://127.0.0.1:{port}")
    try:
        for base in bases:
            wait_until_serving(base)
        yield bases
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def test_ip_and_phone_limits_are_shared(two_servers):
    first, second = two_servers
    post = lambda base, phone: requests.post(base + "/send-otp", json={"phoneNumber": phone}, timeout=5)  # noqa: E731
    # The phone's cooldown lives in the database: the other server sees it.
    assert post(first, "+14155552671").status_code == 200
    assert post(second, "+14155552671").status_code == 429
    # The IP bucket (4 requests per 15 minutes) lives in Redis: the two above
    # and the two below, spread over both servers, fill it.
    assert post(second, "+14152001000").status_code == 200
    assert post(first, "+14152011001").status_code == 200
    limited = post(second, "+14152021002")
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 60

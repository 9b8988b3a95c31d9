"""Races that only a real database with row locks and concurrent transactions shows.

These run on PostgreSQL (``DATABASE_URL``); CI fails if they were skipped there.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from otp import services, tokens
from otp.exceptions import VerificationFailed
from otp.models import AttemptStatus, OtpAttempt
from tests.conftest import PHONE

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.usefixtures("require_postgres"),
]

PIN_URL = "https://xyz.api.infobip.com/2fa/2/pin"
THREADS = 20


def run_parallel(task: Callable[[], Any], count: int = THREADS) -> list[Any]:
    """Start ``count`` threads that call ``task`` at the same moment; return outcomes."""
    barrier = threading.Barrier(count)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            result: Any = task()
        except Exception as err:  # collected, asserted by the test
            result = err
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(outcomes) == count
    return outcomes


def kinds(outcomes: list[Any]) -> Counter[str]:
    return Counter(type(o).__name__ for o in outcomes)


def test_parallel_correct_pins_verify_exactly_once(infobip, settings):
    settings.OTP = {**settings.OTP, "MAX_VERIFY_ATTEMPTS": 10}
    infobip.post(PIN_URL, json={"pinId": "P1"})
    # Infobip, by default, answers "verified" to every repeat of the right PIN.
    infobip.post(f"{PIN_URL}/P1/verify", json={"verified": True, "attemptsRemaining": 0})
    services.send_code(PHONE)
    outcomes = run_parallel(lambda: services.verify_code(PHONE, "123456"))
    assert kinds(outcomes) == Counter({"OtpAttempt": 1, "VerificationFailed": THREADS - 1})
    row = OtpAttempt.objects.get()
    assert row.status == AttemptStatus.VERIFIED and row.verified_at is not None


def test_parallel_uses_of_one_verification_token_accept_it_once():
    token = tokens.make_token(PHONE, "login")
    outcomes = run_parallel(lambda: tokens.read_token(token, consume=True))
    assert kinds(outcomes) == Counter({"VerifiedPhone": 1, "InvalidToken": THREADS - 1})


def test_parallel_wrong_guesses_never_exceed_the_cap(infobip):
    infobip.post(PIN_URL, json={"pinId": "P1"})
    infobip.post(f"{PIN_URL}/P1/verify", json={"verified": False, "pinError": "WRONG_PIN", "attemptsRemaining": 9})
    services.send_code(PHONE)
    outcomes = run_parallel(lambda: services.verify_code(PHONE, "000000"))
    assert kinds(outcomes) == Counter({"VerificationFailed": THREADS})
    verify_calls = [c for c in infobip.calls if c.request.url.endswith("/verify")]
    assert len(verify_calls) == 5
    row = OtpAttempt.objects.get()
    assert row.verify_slots_used == 5 and row.status == AttemptStatus.EXHAUSTED


def test_parallel_sends_leave_exactly_one_pending(outbox):
    outcomes = run_parallel(lambda: services.send_code(PHONE), count=10)
    assert kinds(outcomes) == Counter({"OtpAttempt": 10})
    assert OtpAttempt.objects.filter(status=AttemptStatus.PENDING).count() == 1
    assert OtpAttempt.objects.filter(status=AttemptStatus.SUPERSEDED).count() == 9
    newest_pending = OtpAttempt.objects.get(status=AttemptStatus.PENDING)
    pin = next(m.pin for m in outbox if m.pin_id == newest_pending.pin_id)
    assert services.verify_code(PHONE, pin).pk == newest_pending.pk


def test_parallel_verify_and_send_never_verify_a_superseded_attempt(outbox):
    services.send_code(PHONE)
    first_pin = outbox[0].pin

    def verify_or_send(index: list[int] = [0]) -> Any:  # noqa: B006 (shared counter)
        index[0] += 1
        if index[0] % 2:
            return services.send_code(PHONE)
        return services.verify_code(PHONE, first_pin)

    run_parallel(verify_or_send, count=10)
    verified = OtpAttempt.objects.filter(status=AttemptStatus.VERIFIED)
    assert verified.count() <= 1
    assert OtpAttempt.objects.filter(status=AttemptStatus.PENDING).count() <= 1
    with pytest.raises(VerificationFailed):
        services.verify_code(PHONE, first_pin)


def test_parallel_sends_with_the_cooldown_make_one_provider_send(outbox, production_limits):
    outcomes = run_parallel(lambda: services.send_code(PHONE), count=THREADS)
    assert kinds(outcomes) == Counter({"OtpAttempt": 1, "RateLimited": THREADS - 1})
    assert len(outbox) == 1 and OtpAttempt.objects.count() == 1


def test_parallel_guesses_count_once_each_against_the_phone(infobip, settings):
    from otp.models import PhoneState

    settings.OTP = {**settings.OTP, "MAX_FAILURES_PER_PHONE": 20}
    infobip.post(PIN_URL, json={"pinId": "P1"})
    infobip.post(f"{PIN_URL}/P1/verify", json={"verified": False, "pinError": "WRONG_PIN", "attemptsRemaining": 9})
    services.send_code(PHONE)
    run_parallel(lambda: services.verify_code(PHONE, "000000"))
    verify_calls = [c for c in infobip.calls if c.request.url.endswith("/verify")]
    assert PhoneState.objects.get(phone=PHONE).consecutive_failures == len(verify_calls) == 5


def test_a_send_holds_no_shared_budget_row_after_counting(outbox, production_limits, monkeypatch):
    """Once one send is counted, sends for other numbers go ahead while its transaction runs.

    Every send counts against the same hourly, daily and country rows; held
    until the send commits, they made all sends of a site wait for each other.
    """
    from otp.limits import counters as shared_counters
    from otp.models import RateCounter

    inside, release = threading.Event(), threading.Event()
    count_send = shared_counters.count_send

    def counted_then_held(counters: Any, now: int, phone: str) -> Any:
        counted = count_send(counters, now, phone)
        if any(counter.key == f"prefix:{PHONE[:-4]}" for counter in counters):
            inside.set()
            release.wait(timeout=10)
        return counted

    monkeypatch.setattr(shared_counters, "count_send", counted_then_held)

    def send_then_close() -> None:
        services.send_code(PHONE)
        connection.close()

    held = threading.Thread(target=send_then_close)
    held.start()
    try:
        assert inside.wait(timeout=10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")  # a wait on a held row fails instead of hanging
        other = services.send_code("+12125550199")  # same country, same hourly and daily budget
        assert other.status == AttemptStatus.PENDING
    finally:
        release.set()
        held.join(timeout=10)
    assert RateCounter.objects.get(key="global:hour").count == 2
    assert len(outbox) == 2

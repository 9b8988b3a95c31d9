"""Retention purge and erasure: the service functions and ``manage.py otp_cleanup``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from otp.exceptions import InvalidPhoneNumber
from otp.models import AttemptStatus, OtpAttempt, PhoneState, RateCounter, VerificationTokenUse
from otp.redaction import mask_phone
from otp.retention import erase_phone, purge_expired
from tests.conftest import PHONE

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
OTHER_PHONE = "+442071838750"


def make(expires_at: datetime, status: str = AttemptStatus.EXPIRED, phone: str = PHONE) -> OtpAttempt:
    return OtpAttempt.objects.create(
        phone=phone, status=status, created_at=expires_at - timedelta(minutes=5), expires_at=expires_at
    )


def remaining() -> set[int]:
    return set(OtpAttempt.objects.values_list("pk", flat=True))


def run(*args: str) -> str:
    out = StringIO()
    call_command("otp_cleanup", *args, stdout=out)
    return out.getvalue()


def test_retention_boundary_keeps_the_recent_and_the_valid():
    cutoff = NOW - timedelta(days=30)
    old = [
        make(cutoff - timedelta(seconds=1), status)
        for status in (AttemptStatus.VERIFIED, AttemptStatus.EXPIRED, AttemptStatus.PENDING, AttemptStatus.SENDING)
    ]
    kept = {
        make(cutoff).pk,
        make(cutoff + timedelta(seconds=1), AttemptStatus.VERIFIED).pk,
        make(NOW + timedelta(minutes=4), AttemptStatus.PENDING).pk,
    }
    result = purge_expired(30, now=NOW)
    assert (result.deleted, result.batches, result.cutoff, result.dry_run) == (len(old), 1, cutoff, False)
    assert remaining() == kept


def test_zero_days_deletes_everything_expired_but_no_valid_pin():
    make(NOW - timedelta(seconds=1), AttemptStatus.PENDING)  # dead: past its expiry
    valid = make(NOW + timedelta(seconds=1), AttemptStatus.PENDING)
    assert purge_expired(0, now=NOW).deleted == 1
    assert remaining() == {valid.pk}


def test_batches_smaller_than_the_data_and_idempotent():
    for i in range(7):
        make(NOW - timedelta(days=40, minutes=i))
    live = make(NOW)
    with CaptureQueriesContext(connection) as queries:
        result = purge_expired(30, batch_size=3, now=NOW)
    assert (result.deleted, result.batches) == (7, 3)
    # 3 batches of select + delete, and the empty select that ends the walk.
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3 and all("IN (" in sql for sql in deletes)
    assert all("LIMIT 3" in q["sql"] for q in queries if q["sql"].startswith("SELECT"))
    assert remaining() == {live.pk}
    again = purge_expired(30, batch_size=3, now=NOW)
    assert (again.deleted, again.batches) == (0, 0)


def test_dry_run_counts_and_deletes_nothing():
    for i in range(5):
        make(NOW - timedelta(days=31, hours=i))
    make(NOW)
    result = purge_expired(30, batch_size=2, dry_run=True, now=NOW)
    assert (result.deleted, result.batches, result.dry_run) == (5, 3, True)
    assert OtpAttempt.objects.count() == 6


@pytest.mark.parametrize("retention_days", [-1, 1.5, "30", True, 10**9])
def test_bad_retention_days(retention_days: Any):
    with pytest.raises(ValueError, match="Retention days"):
        purge_expired(retention_days, now=NOW)


@pytest.mark.parametrize("batch_size", [0, -5, 10_001, 2.0, None])
def test_bad_batch_size(batch_size: Any):
    with pytest.raises(ValueError, match="Batch size"):
        purge_expired(30, batch_size=batch_size, now=NOW)


@pytest.mark.parametrize(
    "formatted",
    [
        "+14155552671",
        "+1 (415) 555-2671",
        "+1-415-555-2671",
        "\uff0b\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff12\uff16\uff17\uff11",
    ],
)
def test_erase_phone_in_any_format(formatted: str):
    for status in (AttemptStatus.PENDING, AttemptStatus.VERIFIED, AttemptStatus.EXPIRED):
        make(NOW + timedelta(days=1), status)  # age and status do not matter
    make(NOW - timedelta(days=400))
    other = make(NOW, phone=OTHER_PHONE)
    result = erase_phone(formatted, batch_size=3)
    assert (result.deleted, result.batches, result.phone) == (4, 2, PHONE)
    assert remaining() == {other.pk}


def test_erase_phone_removes_its_limit_state_too():
    PhoneState.objects.create(phone=PHONE, recent_sends="1,2", consecutive_failures=3)
    PhoneState.objects.create(phone=OTHER_PHONE)
    assert erase_phone(PHONE, dry_run=True).deleted == 0
    assert PhoneState.objects.count() == 2
    erase_phone(PHONE)
    assert list(PhoneState.objects.values_list("phone", flat=True)) == [OTHER_PHONE]


SECONDS = int(NOW.timestamp())
HOUR_NOW = SECONDS // 3600


def counter(key: str, window_index: int, blocked_until: int = 0) -> RateCounter:
    return RateCounter.objects.create(key=key, window_index=window_index, count=3, blocked_until=blocked_until)


def test_purge_deletes_limit_state_no_longer_in_use():
    locked_phone, busy_phone = "+14155550100", "+14155550101"
    PhoneState.objects.create(phone=PHONE, recent_sends=str(SECONDS - 40 * 86400), consecutive_failures=3)
    PhoneState.objects.create(phone=locked_phone, locked_until=SECONDS + 60)  # a lock still running
    PhoneState.objects.create(phone=busy_phone, recent_sends=str(SECONDS - 3 * 86400))
    make(NOW - timedelta(days=2), phone=busy_phone)  # an attempt still kept: its state stays
    counter("prefix:+1415555", HOUR_NOW - 2)  # both windows over
    counter("country:GB", HOUR_NOW - 5)
    kept_counters = {
        counter("prefix:+1212555", HOUR_NOW - 1).key,  # still the previous window of the estimate
        counter("country:FR", HOUR_NOW - 9, blocked_until=SECONDS + 600).key,  # blocked
        counter("global:day", HOUR_NOW // 24 - 3).key,  # the site's budget rows stay
    }

    dry = purge_expired(30, now=NOW, dry_run=True)
    assert (dry.limit_states, dry.counters) == (1, 2)
    assert PhoneState.objects.count() == 3 and RateCounter.objects.count() == 5

    result = purge_expired(30, now=NOW, batch_size=1)
    assert (result.limit_states, result.counters) == (1, 2)
    assert set(PhoneState.objects.values_list("phone", flat=True)) == {locked_phone, busy_phone}
    assert set(RateCounter.objects.values_list("key", flat=True)) == kept_counters
    again = purge_expired(30, now=NOW)
    assert (again.deleted, again.limit_states, again.counters) == (0, 0, 0)


def test_a_phone_keeps_its_limit_state_for_a_day_even_with_zero_days():
    """Its cooldown and daily cap outlive attempts purged at once; a day later nothing is left to limit."""
    make(NOW - timedelta(hours=2))
    PhoneState.objects.create(phone=PHONE, recent_sends=str(SECONDS - 2 * 3600 - 300))
    result = purge_expired(0, now=NOW)
    assert (result.deleted, result.limit_states) == (1, 0)
    assert PhoneState.objects.filter(phone=PHONE).exists()
    assert purge_expired(0, now=NOW + timedelta(days=1)).limit_states == 1
    assert not PhoneState.objects.exists()


def test_command_reports_the_limit_state_it_deletes(time_machine):
    time_machine.move_to(NOW, tick=False)
    PhoneState.objects.create(phone=PHONE)
    counter("prefix:+1415555", HOUR_NOW - 3)
    assert "Would delete 1 phone limit state(s) and 1 rate counter(s) no longer in use." in run("--dry-run")
    assert "Deleted 1 phone limit state(s) and 1 rate counter(s) no longer in use." in run()
    assert not PhoneState.objects.exists() and not RateCounter.objects.exists()


def test_purge_deletes_the_records_of_expired_token_uses(time_machine):
    VerificationTokenUse.objects.create(token_id="gone", expires_at=NOW - timedelta(seconds=1))
    VerificationTokenUse.objects.create(token_id="kept", expires_at=NOW + timedelta(seconds=1))
    dry = purge_expired(30, now=NOW, dry_run=True)
    assert dry.token_uses == 1 and VerificationTokenUse.objects.count() == 2
    # Whatever the retention: past its expiry the token is refused anyway.
    assert purge_expired(30, now=NOW, batch_size=1).token_uses == 1
    assert list(VerificationTokenUse.objects.values_list("token_id", flat=True)) == ["kept"]
    time_machine.move_to(NOW + timedelta(seconds=2), tick=False)
    assert "Deleted 1 used verification token record(s) past their expiry." in run()
    assert not VerificationTokenUse.objects.exists()


def test_erase_phone_national_format_follows_default_region(settings):
    settings.OTP = {**settings.OTP, "DEFAULT_REGION": "US"}
    make(NOW)
    assert erase_phone("(415) 555-2671").deleted == 1


def test_erase_phone_dry_run_and_invalid_number():
    make(NOW)
    assert erase_phone(PHONE, dry_run=True).deleted == 1
    assert OtpAttempt.objects.count() == 1
    with pytest.raises(InvalidPhoneNumber):
        erase_phone("+1415555267")


def test_command_uses_the_retention_setting(settings, time_machine):
    settings.OTP = {**settings.OTP, "RETENTION_DAYS": 7}
    time_machine.move_to(NOW, tick=False)
    make(NOW - timedelta(days=7, seconds=1))
    kept = make(NOW - timedelta(days=6))
    out = run()
    assert (
        "Deleted 1 OTP attempt(s) that expired before 2026-06-08 12:00:00 UTC (7 days of retention) "
        "in 1 batch(es)." in out
    )
    assert remaining() == {kept.pk}


def test_command_options(time_machine):
    time_machine.move_to(NOW, tick=False)
    for days in (2, 3, 4):
        make(NOW - timedelta(days=days))
    assert "Dry run: would delete 2 OTP attempt(s)" in run("--retention-days", "2", "--dry-run")
    assert OtpAttempt.objects.count() == 3
    assert (
        "Deleted 2 OTP attempt(s) that expired before 2026-06-13 12:00:00 UTC (2 days of retention) "
        "in 2 batch(es)." in run("--retention-days=2", "--batch-size=1")
    )
    assert "Deleted 0 OTP attempt(s)" in run("--retention-days=2")
    assert "Deleted 1 OTP attempt(s)" in run("--retention-days", "0")
    assert not OtpAttempt.objects.exists()


def test_command_erases_a_phone_and_masks_it_in_the_output():
    make(NOW)
    make(NOW, phone=OTHER_PHONE)
    out = run("--erase-phone", "+1 415 555 2671")
    assert f"Deleted 1 OTP attempt(s) of {mask_phone(PHONE)} in 1 batch(es)." in out
    assert PHONE not in out
    assert list(OtpAttempt.objects.values_list("phone", flat=True)) == [OTHER_PHONE]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--retention-days", "-1"], "Retention days must be a non-negative integer."),
        (["--retention-days", "99999999"], "Retention days is too large."),
        (["--batch-size", "0"], "Batch size must be an integer from 1 to 10000."),
        (["--erase-phone", "12345"], "--erase-phone: not a valid phone number"),
        (["--erase-phone", PHONE, "--retention-days", "3"], "cannot be combined"),
        (["--retention-days", "soon"], "invalid int value"),
    ],
)
def test_command_bad_input(args: list[str], message: str):
    make(NOW - timedelta(days=400))
    with pytest.raises(CommandError, match=message.replace("+", r"\+").replace(".", r"\.")):
        run(*args)
    assert OtpAttempt.objects.count() == 1


def test_command_bad_setting_is_a_command_error(settings):
    settings.OTP = {**settings.OTP, "RETENTION_DAYS": "30"}
    with pytest.raises(CommandError, match="Retention days must be a non-negative integer"):
        run()

"""Per-phone limits, kept on the phone's ``PhoneState`` row.

The resend cooldown and daily cap, a hold while the provider throttles the
number, and the lockout after failed verifications. A send records itself on
the row only if the row is still what the send read and checked (compare and
swap), so of two parallel sends for one number the second sees the first
one's cooldown; nothing is locked between the read and the write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError

from otp.conf import otp_settings
from otp.events import LOCKOUT, log_event
from otp.exceptions import RateLimited
from otp.limits.clock import DAY, coarse
from otp.models import PhoneState
from otp.sql import execute, table_name

logger = logging.getLogger(__name__)


@dataclass
class PhoneLimits:
    """A phone's state as read, and the stored text its send times came from."""

    phone: str
    sends: list[int]
    consecutive_failures: int
    locked_until: int
    stored_sends: str = ""
    send_held_until: int = 0


class PhoneStateChanged(Exception):
    """Another request changed the phone's state since it was read; read it again."""


def read_phone(phone: str) -> PhoneLimits:
    """The phone's state (empty if it has no row yet): a plain read, nothing locked or written.

    A send records itself with :func:`send_claim`, which only succeeds if the
    state is still what was read here.
    """
    row = execute(
        f"SELECT {_PHONE_COLUMNS} FROM {table_name(PhoneState)} WHERE phone = %s",  # noqa: S608
        [phone],
    )
    return phone_limits_from_row(phone, row)


# The columns :func:`_phone_limits` reads, in its order.
_PHONE_COLUMNS = "recent_sends, consecutive_failures, locked_until, send_held_until"


def phone_limits_from_row(phone: str, row: Any) -> PhoneLimits:
    """``PhoneLimits`` from a row of :data:`_PHONE_COLUMNS`; no row is no state."""
    recent, failures, locked_until, held_until = row if row and row[0] is not None else ("", 0, 0, 0)
    return PhoneLimits(
        phone, parse_sends(recent), failures, locked_until, stored_sends=recent, send_held_until=held_until
    )


def parse_sends(recent_sends: str) -> list[int]:
    """The send times a phone's row stores (``PhoneState.recent_sends``), oldest first."""
    return [int(t) for t in recent_sends.split(",") if t]


def send_claim(state: PhoneLimits, sends: list[int], now: int) -> tuple[str, list[Any]]:
    """The statement that stores the phone's send times, if its state is still ``state``.

    An upsert that creates the phone's row or changes it (one row), or changes
    nothing when a parallel request changed the phone first: compare and swap,
    with nothing locked between the read and this write.
    """
    table = table_name(PhoneState)
    sql = (
        f"INSERT INTO {table} (phone, recent_sends, consecutive_failures, locked_until) VALUES (%s, %s, 0, 0) "
        f"ON CONFLICT (phone) DO UPDATE SET recent_sends = excluded.recent_sends "
        f"WHERE {table}.recent_sends = %s AND {table}.locked_until = %s"
    )
    return sql, [state.phone, ",".join(str(t) for t in [*sends, now]), state.stored_sends, state.locked_until]


def record_send(state: PhoneLimits, sends: list[int], now: int) -> None:
    """Store the phone's send times; :class:`PhoneStateChanged` if it changed since it was read."""
    if not execute(*send_claim(state, sends, now)):
        raise PhoneStateChanged()


def check_phone_lock(state: PhoneLimits, now: int) -> None:
    if state.locked_until > now:
        raise RateLimited("phone locked after failed verifications", retry_after=coarse(state.locked_until - now))


def check_send_allowed(state: PhoneLimits, now: int) -> list[int]:
    """Raise :class:`RateLimited` if the phone may not get another SMS now.

    :returns: the sends of the last 24 hours, oldest first.
    """
    check_phone_lock(state, now)
    if state.send_held_until > now:
        raise RateLimited("provider throttled this phone", retry_after=coarse(state.send_held_until - now))
    sends = sorted(t for t in state.sends if t > now - DAY)
    cap = otp_settings.MAX_SENDS_PER_PHONE_PER_DAY
    if cap is not None and len(sends) >= cap:
        raise RateLimited("daily send cap for this phone", retry_after=coarse(sends[-cap] + DAY - now))
    if sends:
        wait_until = sends[-1] + cooldown_after(len(sends))
        if wait_until > now:
            raise RateLimited("resend cooldown", retry_after=coarse(wait_until - now))
    return sends


def seconds_until_send(phone: str, now: int) -> int:
    """Seconds before ``phone`` may get another code (0: now), as :func:`check_send_allowed` would refuse it."""
    try:
        check_send_allowed(read_phone(phone), now)
    except RateLimited as err:
        return err.retry_after
    return 0


def hold_sends(phone: str, until: int) -> None:
    """No code goes to ``phone`` before ``until`` (Unix time): the provider throttled it."""
    PhoneState.objects.filter(phone=phone, send_held_until__lt=until).update(send_held_until=until)


def forget_send(phone: str, sent_at: int) -> None:
    """Take one send at ``sent_at`` off the phone's record: the provider sent nothing.

    The phone's cooldown and daily cap then stand as before the send. Compare
    and swap, as the send recorded itself; best effort, as a refused send
    that stays counted only errs on the safe side.
    """
    try:
        for _ in range(_FORGET_TRIES):
            state = read_phone(phone)
            if sent_at not in state.sends:
                return
            sends = list(state.sends)
            sends.remove(sent_at)
            stored = ",".join(str(t) for t in sends)
            if PhoneState.objects.filter(phone=phone, recent_sends=state.stored_sends).update(recent_sends=stored):
                return
    except DatabaseError:
        pass
    logger.warning("could not take a refused send off its phone's record")


_FORGET_TRIES = 8


def cooldown_after(sends_today: int) -> int:
    """Seconds to wait after the ``sends_today``-th send: doubles each time, capped."""
    base = otp_settings.RESEND_COOLDOWN_SECONDS or 0
    if base <= 0 or sends_today <= 0:
        return 0
    ceiling = otp_settings.RESEND_COOLDOWN_MAX_SECONDS or base
    return int(min(base * 2 ** min(sends_today - 1, 30), ceiling))


def record_verify_failure(phone: str, now: int) -> None:
    """Count a failed verify against the phone; lock it with backoff at the cap."""
    table = table_name(PhoneState)
    (failures,) = execute(
        f"INSERT INTO {table} (phone, recent_sends, consecutive_failures, locked_until) "
        f"VALUES (%s, '', 1, 0) ON CONFLICT (phone) DO UPDATE SET "
        f"consecutive_failures = {table}.consecutive_failures + 1 RETURNING consecutive_failures",
        [phone],
    )
    cap = otp_settings.MAX_FAILURES_PER_PHONE
    if cap is None or failures < cap:
        return
    base = otp_settings.FAILURE_BACKOFF_SECONDS or 0
    backoff = min(base * 2 ** min(failures - cap, 30), otp_settings.FAILURE_BACKOFF_MAX_SECONDS or base)
    PhoneState.objects.filter(phone=phone).update(locked_until=now + int(backoff))
    log_event(LOCKOUT, phone=phone, level=logging.WARNING, failures=failures, seconds=int(backoff))


def reset_verify_failures(phone: str) -> None:
    PhoneState.objects.filter(phone=phone).update(consecutive_failures=0, locked_until=0)

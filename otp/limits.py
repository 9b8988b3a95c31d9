"""Database-backed limits: per phone, per prefix, per country and site-wide.

They hold across processes and instances with no cache: every counter is
changed by one atomic SQL statement, and a send records itself on its phone's
state row only if that row is still what the send read and checked (compare
and swap), so of two parallel sends for one number the second sees the first
one's cooldown. The upserts use ``INSERT ... ON CONFLICT ... RETURNING``,
which PostgreSQL and SQLite (3.35+) both speak.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection
from django.db.models import Model, Q, QuerySet

from otp.attempt_sql import execute
from otp.conf import otp_settings
from otp.events import BUDGET_ALERT, LOCKOUT, log_event
from otp.exceptions import BudgetExhausted, RateLimited
from otp.models import PhoneState, RateCounter

logger = logging.getLogger(__name__)

DAY = 24 * 3600
HOUR = 3600
# Retry-After is rounded up to whole minutes: the client learns "later", not
# a precise window edge.
RETRY_AFTER_STEP = 60


def coarse(seconds: float) -> int:
    return max(RETRY_AFTER_STEP, math.ceil(seconds / RETRY_AFTER_STEP) * RETRY_AFTER_STEP)


def now_seconds() -> int:
    return int(time.time())


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# -- per phone -------------------------------------------------------------------


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
        f"SELECT {_PHONE_COLUMNS} FROM {_table(PhoneState)} WHERE phone = %s",  # noqa: S608
        [phone],
    )
    return _phone_limits(phone, row)


# The columns :func:`_phone_limits` reads, in its order.
_PHONE_COLUMNS = "recent_sends, consecutive_failures, locked_until, send_held_until"


def _phone_limits(phone: str, row: Any) -> PhoneLimits:
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
    table = _table(PhoneState)
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
    table = _table(PhoneState)
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


# -- per prefix, per country, site-wide -------------------------------------------


@dataclass(frozen=True)
class Counter:
    key: str
    window: int
    limit: int
    block_seconds: int = 0  # 0: a budget (503 when spent), not a block (429)


#: Key prefixes of the per-prefix and per-country counters (hourly windows), and of the site's budgets.
PREFIX = "prefix:"
COUNTRY = "country:"
BUDGET = "global:"


def idle_counters(now: int) -> QuerySet[RateCounter]:
    """Prefix and country counters that neither block nor count any more.

    A counter two windows old contributes nothing to the sliding estimate:
    the next send restarts it at one, exactly as a new row.
    """
    return RateCounter.objects.filter(
        Q(key__startswith=PREFIX) | Q(key__startswith=COUNTRY),
        blocked_until__lte=now,
        window_index__lt=now // HOUR - 1,
    )


def send_counters(phone: str, region: str) -> list[Counter]:
    """The counters one SMS to ``phone`` increments, in a fixed (sorted) order."""
    specs = []
    strip = otp_settings.PREFIX_STRIP_DIGITS or 0
    if otp_settings.MAX_SENDS_PER_PREFIX_PER_HOUR is not None:
        specs.append(
            Counter(
                f"{PREFIX}{phone[: len(phone) - strip]}",
                HOUR,
                otp_settings.MAX_SENDS_PER_PREFIX_PER_HOUR,
                otp_settings.PREFIX_BLOCK_SECONDS,
            )
        )
    if otp_settings.MAX_SENDS_PER_COUNTRY_PER_HOUR is not None:
        specs.append(
            Counter(
                f"{COUNTRY}{region}",
                HOUR,
                otp_settings.MAX_SENDS_PER_COUNTRY_PER_HOUR,
                otp_settings.COUNTRY_BLOCK_SECONDS,
            )
        )
    if otp_settings.MAX_SENDS_PER_HOUR is not None:
        specs.append(Counter(f"{BUDGET}hour", HOUR, otp_settings.MAX_SENDS_PER_HOUR))
    if otp_settings.MAX_SENDS_PER_DAY is not None:
        specs.append(Counter(f"{BUDGET}day", DAY, otp_settings.MAX_SENDS_PER_DAY))
    # One lock order for every transaction: no deadlock on the shared rows.
    return sorted(specs, key=lambda c: c.key)


def estimate(count: int, previous: int, window_index: int, window: int, now: float) -> float:
    """Sliding-window estimate: the previous window weighted by its overlap."""
    elapsed = (now - window_index * window) / window
    return previous * max(0.0, 1.0 - elapsed) + count


#: What :func:`count_send` incremented: (key, window index) pairs.
Counted = list[tuple[str, int]]


def count_send(counters: list[Counter], now: int, phone: str) -> tuple[Counted, PhoneLimits]:
    """Count one SMS against every counter, or raise if a block or budget stops it; read ``phone``'s state.

    Run it as a statement of its own, before the rest of the send: the shared
    rows (the site-wide budget, a country) are then locked only while it runs.
    Held until a send's transaction committed, they made every parallel send
    queue behind whichever thread held them. On PostgreSQL the same statement
    reads the phone's state (as :func:`read_phone`), one round trip fewer per
    send; elsewhere that is a second statement.

    A refusal here undoes this call's increments before it raises; a send
    refused later is undone by the caller with :func:`uncount_send`.

    :returns: what was incremented, for :func:`uncount_send`, and the phone's state.
    """
    if not counters:
        return [], read_phone(phone)
    table = _table(RateCounter)
    blockable = [c.key for c in counters if c.block_seconds]
    # A blocked prefix or country increments nothing, not even the budget
    # (the guard covers existing rows; new ones are undone below).
    guard = ""
    guard_params: list[str | int] = []
    if blockable:
        guard = (
            f" WHERE NOT EXISTS (SELECT 1 FROM {table} AS b WHERE b.key IN "
            f"({', '.join(['%s'] * len(blockable))}) AND b.blocked_until > %s)"
        )
        guard_params = [*blockable, now]
    same = f"{table}.window_index = excluded.window_index"
    sql, params = _upsert_counters_sql(
        [(counter.key, now // counter.window) for counter in counters],
        initial=1,
        on_conflict=(
            f"previous_count = CASE WHEN {same} THEN {table}.previous_count "
            f"WHEN {table}.window_index = excluded.window_index - 1 THEN {table}.count ELSE 0 END, "
            f"alert_level = CASE WHEN {same} THEN {table}.alert_level ELSE 0 END, "
            f"count = CASE WHEN {same} THEN {table}.count + 1 ELSE 1 END, "
            f"window_index = excluded.window_index{guard}"
        ),
    )
    if connection.vendor == "postgresql":
        rows, state = _counted_and_phone(sql, [*params, *guard_params], phone)
    else:
        rows, state = _counted(sql, [*params, *guard_params]), None
    counted = [(key, row[2]) for key, row in rows.items()]
    try:
        if len(rows) < len(counters):
            _raise_for_block(blockable, now)
        for counter in counters:
            count, previous, window_index, alert_level = rows[counter.key]
            used = estimate(count, previous, window_index, counter.window, now)
            if counter.block_seconds:
                if used > counter.limit:
                    raise VelocityTripped(counter, now)
            else:
                _alert_budget(counter, used, window_index, alert_level)
                if used > counter.limit:
                    raise BudgetExhausted(
                        f"{counter.key} send budget spent",
                        retry_after=coarse((window_index + 1) * counter.window - now),
                    )
    except (RateLimited, BudgetExhausted) as err:
        uncount_send(counted)
        if isinstance(err, VelocityTripped):
            err.persist()
        raise
    return counted, state if state is not None else read_phone(phone)


def uncount_send(counted: Counted) -> None:
    """Take back what :func:`count_send` counted, for a send that did not go ahead.

    A counter whose window moved on meanwhile is left alone. Best effort: if
    the database fails here the send stays counted, which only errs on the
    safe side of a budget.
    """
    if not counted:
        return
    table = _table(RateCounter)
    try:
        # The same sorted upsert as the count, so both lock rows in one order.
        _counted(
            *_upsert_counters_sql(
                sorted(counted),
                initial=0,
                on_conflict=(
                    f"count = CASE WHEN {table}.window_index = excluded.window_index AND {table}.count > 0 "
                    f"THEN {table}.count - 1 ELSE {table}.count END"
                ),
            )
        )
    except DatabaseError:
        logger.warning("could not take back a refused send's counts")


def refund_send(phone: str, sent_at: int, counted: Counted) -> None:
    """Undo a send the provider refused (it sent nothing): the phone's cooldown and cap, and the site budget.

    The per-prefix and per-country counts stay, like the per-IP ones: a
    client pays for every request it makes, delivered or not.
    """
    forget_send(phone, sent_at)
    uncount_send([(key, window) for key, window in counted if key.startswith(BUDGET)])


def _upsert_counters_sql(keys: list[tuple[str, int]], *, initial: int, on_conflict: str) -> tuple[str, list[str | int]]:
    """One ``INSERT ... ON CONFLICT DO UPDATE`` over (key, window index) pairs, in their order.

    It returns (key, count, previous count, window index, alert level) for
    the rows it changed; ``on_conflict`` may add parameters after these.
    """
    table = _table(RateCounter)
    values = ", ".join([f"(%s, %s, {initial}, 0, 0, 0)"] * len(keys))
    sql = (
        f"INSERT INTO {table} (key, window_index, count, previous_count, blocked_until, alert_level) "
        f"VALUES {values} ON CONFLICT (key) DO UPDATE SET {on_conflict} "
        f"RETURNING key, count, previous_count, window_index, alert_level"
    )
    return sql, [value for pair in keys for value in pair]


def _counted(sql: str, params: list[str | int]) -> dict[str, tuple[int, int, int, int]]:
    """Run a counter upsert: (count, previous count, window index, alert level) by key."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _counted_and_phone(
    sql: str, params: list[str | int], phone: str
) -> tuple[dict[str, tuple[int, int, int, int]], PhoneLimits]:
    """:func:`_counted`, and :func:`read_phone` in the same statement (a data-modifying CTE, PostgreSQL's)."""
    # One row per changed counter, each with the phone's columns (NULL when
    # it has no row); a single row of NULL counters if none changed.
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH counted AS ({sql}) "  # noqa: S608
            f"SELECT c.key, c.count, c.previous_count, c.window_index, c.alert_level, "
            f"p.recent_sends, p.consecutive_failures, p.locked_until, p.send_held_until "
            f"FROM (SELECT 1) AS one LEFT JOIN counted AS c ON true "
            f"LEFT JOIN {_table(PhoneState)} AS p ON p.phone = %s",
            [*params, phone],
        )
        rows = cursor.fetchall()
    return {row[0]: row[1:5] for row in rows if row[0] is not None}, _phone_limits(phone, rows[0][5:])


def _raise_for_block(keys: list[str], now: int) -> None:
    blocked = RateCounter.objects.filter(key__in=keys, blocked_until__gt=now).order_by("-blocked_until").first()
    retry = blocked.blocked_until - now if blocked else RETRY_AFTER_STEP
    raise RateLimited(f"{blocked.key.split(':')[0] if blocked else 'destination'} blocked", retry_after=coarse(retry))


class VelocityTripped(RateLimited):
    """A prefix or country went over its velocity limit; :func:`count_send` persists the block."""

    def __init__(self, counter: Counter, now: int) -> None:
        super().__init__(f"{counter.key.split(':')[0]} velocity", retry_after=coarse(counter.block_seconds))
        self.counter = counter
        self.now = now

    def persist(self) -> None:
        RateCounter.objects.filter(key=self.counter.key).update(blocked_until=self.now + self.counter.block_seconds)


def _alert_budget(counter: Counter, used: float, window_index: int, alert_level: int) -> None:
    percent = 100.0 * used / counter.limit if counter.limit else 100.0
    due = [p for p in otp_settings.BUDGET_ALERT_PERCENTS or () if alert_level < p <= percent]
    if not due:
        return
    level = max(due)
    # Only the request that moves the level up logs, once per threshold and window.
    claimed = RateCounter.objects.filter(key=counter.key, window_index=window_index, alert_level__lt=level).update(
        alert_level=level
    )
    if claimed:
        log_event(
            BUDGET_ALERT,
            level=logging.ERROR if level >= 100 else logging.WARNING,
            budget=counter.key,
            percent=level,
            limit=counter.limit,
        )

"""Per-prefix, per-country and site-wide send counters.

They hold across processes and instances with no cache: every counter is
changed by one atomic ``INSERT ... ON CONFLICT ... RETURNING`` statement
(PostgreSQL, and SQLite 3.35+), with a sliding-window estimate over the
current and previous window. A prefix or country over its velocity limit is
blocked (429); a spent site budget answers 503.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import DatabaseError, connection
from django.db.models import Q, QuerySet

from otp.conf import otp_settings
from otp.events import BUDGET_ALERT, log_event
from otp.exceptions import BudgetExhausted, RateLimited
from otp.limits.clock import DAY, HOUR, RETRY_AFTER_STEP, coarse
from otp.limits.phone_state import PhoneLimits, forget_send, phone_limits_from_row, read_phone
from otp.models import PhoneState, RateCounter
from otp.sql import table_name

logger = logging.getLogger(__name__)


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
    table = table_name(RateCounter)
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
    table = table_name(RateCounter)
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
    table = table_name(RateCounter)
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
            f"LEFT JOIN {table_name(PhoneState)} AS p ON p.phone = %s",
            [*params, phone],
        )
        rows = cursor.fetchall()
    return {row[0]: row[1:5] for row in rows if row[0] is not None}, phone_limits_from_row(phone, rows[0][5:])


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

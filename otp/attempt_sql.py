"""The statements of the hot path, written once as SQL instead of built per request.

Each send and verify runs a handful of statements; building them with the ORM
cost several times more CPU than running them. These functions hold the same
statements as plain SQL, the same on PostgreSQL and SQLite (3.35+ for
``RETURNING``). Only model table names are formatted into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from otp.models import AttemptStatus, OtpAttempt, PhoneState

_T = OtpAttempt._meta.db_table
_P = PhoneState._meta.db_table
PENDING, SENDING = AttemptStatus.PENDING.value, AttemptStatus.SENDING.value


def _time(value: datetime) -> Any:
    """A datetime as the backend stores it (naive UTC text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(value)


def execute(sql: str, params: list[Any]) -> Any:
    """Run one statement; its first row if it returns rows, else the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() if cursor.description else cursor.rowcount


def insert_attempt(
    *,
    phone: str,
    provider: str,
    user_id: int | None,
    purpose: str,
    channel: str,
    created_at: datetime,
    expires_at: datetime,
) -> int:
    row = execute(
        f"INSERT INTO {_T} (phone, pin_id, status, channel, purpose, provider, failed_verifies, user_id, "  # noqa: S608
        f"created_at, expires_at, verified_at, resends) VALUES (%s, NULL, %s, %s, %s, %s, 0, %s, %s, %s, NULL, 0) "
        f"RETURNING id",
        [phone, SENDING, channel, purpose, provider, user_id, _time(created_at), _time(expires_at)],
    )
    return int(row[0])


def record_delivery(attempt_id: int, phone: str, purpose: str, pin_id: str) -> None:
    """Store the pinId; the attempt becomes pending (unless superseded) and older open ones superseded.

    One statement, atomic on its own. On PostgreSQL it first locks the rows it
    changes in ascending id order, so two sends finishing together wait for
    each other instead of deadlocking; a row changed meanwhile is re-checked
    against the scope once its lock is granted.
    """
    scope = f"phone = %s AND purpose = %s AND (id = %s OR (id < %s AND status IN ('{PENDING}', '{SENDING}')))"
    params: list[Any] = [phone, purpose, attempt_id, attempt_id]
    update = (
        f"UPDATE {_T} SET "  # noqa: S608
        f"pin_id = CASE WHEN id = %s THEN %s ELSE pin_id END, "
        f"status = CASE WHEN id = %s THEN (CASE WHEN status = '{SENDING}' THEN '{PENDING}' ELSE status END) "
        f"ELSE '{AttemptStatus.SUPERSEDED.value}' END WHERE {scope}"
    )
    if connection.features.has_select_for_update:
        sql = f"WITH locked AS (SELECT id FROM {_T} WHERE {scope} ORDER BY id FOR UPDATE) {update} "  # noqa: S608
        sql += "AND id IN (SELECT id FROM locked)"
        execute(sql, [*params, attempt_id, pin_id, attempt_id, *params])
    else:
        execute(update, [attempt_id, pin_id, attempt_id, *params])


@dataclass
class PendingAttempt:
    pk: int
    pin_id: str | None
    expired: bool
    failed_verifies: int
    user_id: int | None
    locked_until: int
    phone_failures: int


def newest_pending(phone: str, purpose: str, now: datetime) -> PendingAttempt | None:
    """The phone's newest pending attempt for ``purpose``, with the phone's lockout state."""
    row = execute(
        f"SELECT a.id, a.pin_id, CASE WHEN a.expires_at > %s THEN 0 ELSE 1 END, a.failed_verifies, a.user_id, "  # noqa: S608
        f"COALESCE(p.locked_until, 0), COALESCE(p.consecutive_failures, 0) "
        f"FROM {_T} a LEFT JOIN {_P} p ON p.phone = a.phone "
        f"WHERE a.phone = %s AND a.purpose = %s AND a.status = '{PENDING}' ORDER BY a.id DESC LIMIT 1",
        [_time(now), phone, purpose],
    )
    if row is None:
        return None
    return PendingAttempt(
        pk=row[0],
        pin_id=row[1],
        expired=bool(row[2]),
        failed_verifies=row[3],
        user_id=row[4],
        locked_until=int(row[5]),
        phone_failures=int(row[6]),
    )


def reserve_verify_slot(attempt_id: int, max_attempts: int, now: datetime) -> int | None:
    """Count one verify attempt if the attempt is pending, unexpired and under the cap.

    :returns: the slot taken (1 to ``max_attempts``), or None when none is left.
    """
    row = execute(
        f"UPDATE {_T} SET failed_verifies = failed_verifies + 1 "  # noqa: S608
        f"WHERE id = %s AND status = '{PENDING}' AND failed_verifies < %s AND expires_at > %s "
        f"RETURNING failed_verifies",
        [attempt_id, max_attempts, _time(now)],
    )
    return int(row[0]) if row else None


def mark_verified(attempt_id: int, verified_at: datetime) -> bool:
    """Pending -> verified, once; the reserved slot was not a failure after all."""
    return bool(
        execute(
            f"UPDATE {_T} SET status = '{AttemptStatus.VERIFIED.value}', verified_at = %s, "  # noqa: S608
            f"failed_verifies = failed_verifies - 1 WHERE id = %s AND status = '{PENDING}'",
            [_time(verified_at), attempt_id],
        )
    )


def close_pending(attempt_id: int, status: str) -> None:
    """Pending -> ``status`` (expired, exhausted...)."""
    execute(f"UPDATE {_T} SET status = %s WHERE id = %s AND status = '{PENDING}'", [status, attempt_id])  # noqa: S608

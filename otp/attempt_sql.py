"""The attempt statements the ORM cannot say in one: insert behind a claim, deliver, claim a slot, mark verified.

Each is one statement on PostgreSQL (a data-modifying CTE where it needs one)
and on SQLite (3.35+ for ``RETURNING``), or a short transaction where SQLite
lacks the CTE. Only table and column names from the models are formatted into
them; every value is a parameter. The other one-row updates use the ORM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from otp.models import AttemptStatus, OtpAttempt, PhoneState
from otp.sql import db_time, execute, table_name

_T = table_name(OtpAttempt)
_P = table_name(PhoneState)
_PK = connection.ops.quote_name(str(OtpAttempt._meta.pk.column))
# Every column but the key, from the model: a new field needs no edit here.
_FIELDS = [field for field in OtpAttempt._meta.concrete_fields if not field.primary_key]
_COLUMNS = ", ".join(connection.ops.quote_name(str(field.column)) for field in _FIELDS)
_VALUES = ", ".join(["%s"] * len(_FIELDS))
# The column keeps its first name, failed_verifies, so deployed SQL still reads it.
_SLOTS = connection.ops.quote_name(str(OtpAttempt._meta.get_field("verify_slots_used").column))
PENDING, SENDING = AttemptStatus.PENDING.value, AttemptStatus.SENDING.value


def insert_attempt(attempt: OtpAttempt, claim: tuple[str, list[Any]] | None = None) -> int | None:
    """Insert ``attempt`` (every column of the model); with ``claim``, only if that statement writes a row.

    ``claim`` is a write statement and its parameters.

    The two are one statement on PostgreSQL and one transaction elsewhere.

    :returns: the new attempt's id, or None if the claim changed nothing.
    """
    params = [field.get_db_prep_save(getattr(attempt, field.attname), connection) for field in _FIELDS]
    insert = f"INSERT INTO {_T} ({_COLUMNS}) VALUES ({_VALUES}) RETURNING {_PK}"  # noqa: S608
    if claim is None:
        row = execute(insert, params)
    elif connection.vendor == "postgresql":
        claim_sql, claim_params = claim
        row = execute(
            f"WITH claimed AS ({claim_sql} RETURNING 1) "  # noqa: S608
            f"INSERT INTO {_T} ({_COLUMNS}) SELECT {_VALUES} FROM claimed RETURNING {_PK}",
            [*claim_params, *params],
        )
    else:
        with transaction.atomic():
            if not execute(*claim):
                return None
            row = execute(insert, params)
    return None if row is None else int(row[0])


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
    user_id: int | None
    locked_until: int
    phone_failures: int
    #: The verify slot this call took (1 to the cap), or None if it took none.
    slot: int | None


_NEWEST_PENDING = (
    f"SELECT a.id, a.pin_id, CASE WHEN a.expires_at > %s THEN 0 ELSE 1 END AS expired, a.user_id, "  # noqa: S608
    f"COALESCE(p.locked_until, 0) AS locked_until, COALESCE(p.consecutive_failures, 0) AS phone_failures "
    f"FROM {_T} a LEFT JOIN {_P} p ON p.phone = a.phone "
    f"WHERE a.phone = %s AND a.purpose = %s AND a.status = '{PENDING}' ORDER BY a.id DESC LIMIT 1"
)
# Rechecked on the row itself: a parallel verify may have taken the last slot.
_SLOT_FREE = f"t.status = '{PENDING}' AND t.{_SLOTS} < %s AND t.expires_at > %s"


def claim_verify_slot(
    phone: str, purpose: str, now: datetime, seconds: int, max_attempts: int
) -> PendingAttempt | None:
    """The phone's newest pending attempt for ``purpose``, with one verify attempt counted against it.

    The slot is taken only if the attempt has a pinId, is unexpired and under
    ``max_attempts``, and its phone is not locked out at ``seconds`` (epoch);
    otherwise ``slot`` is None and the other fields tell why. On PostgreSQL
    the look-up and the claim are one statement.
    """
    when = db_time(now)
    if connection.vendor == "postgresql":
        row = execute(
            f"WITH a AS ({_NEWEST_PENDING}), taken AS ("  # noqa: S608
            f"UPDATE {_T} AS t SET {_SLOTS} = t.{_SLOTS} + 1 FROM a WHERE t.id = a.id "
            f"AND a.pin_id IS NOT NULL AND a.expired = 0 AND a.locked_until <= %s AND {_SLOT_FREE} "
            f"RETURNING t.{_SLOTS}) "
            f"SELECT a.*, (SELECT {_SLOTS} FROM taken) FROM a",
            [when, phone, purpose, seconds, max_attempts, when],
        )
        return None if row is None else _pending(row[:6], row[6])
    row = execute(_NEWEST_PENDING, [when, phone, purpose])
    if row is None:
        return None
    attempt = _pending(row, None)
    if attempt.pin_id and not attempt.expired and attempt.locked_until <= seconds:
        taken = execute(
            f"UPDATE {_T} AS t SET {_SLOTS} = {_SLOTS} + 1 WHERE t.id = %s AND {_SLOT_FREE} "  # noqa: S608
            f"RETURNING {_SLOTS}",
            [attempt.pk, max_attempts, when],
        )
        attempt.slot = int(taken[0]) if taken else None
    return attempt


def _pending(row: Any, slot: int | None) -> PendingAttempt:
    pk, pin_id, expired, user_id, locked_until, phone_failures = row
    return PendingAttempt(
        pk=pk,
        pin_id=pin_id,
        expired=bool(expired),
        user_id=user_id,
        locked_until=int(locked_until),
        phone_failures=int(phone_failures),
        slot=None if slot is None else int(slot),
    )


def mark_verified(attempt_id: int, verified_at: datetime) -> str | None:
    """Pending -> verified, once, if ``verified_at`` is before the expiry; else pending -> expired.

    Either way the PIN was right, so its verify slot is given back. One
    statement that returns the status it set: the ORM's ``update()`` returns
    a count, and would take a second statement to tell the two apart.

    :returns: the status the attempt took, or None if it was no longer pending.
    """
    when = db_time(verified_at)
    row = execute(
        f"UPDATE {_T} SET "  # noqa: S608
        f"status = CASE WHEN expires_at > %s THEN '{AttemptStatus.VERIFIED.value}' "
        f"ELSE '{AttemptStatus.EXPIRED.value}' END, "
        f"verified_at = CASE WHEN expires_at > %s THEN %s ELSE NULL END, "
        f"{_SLOTS} = {_SLOTS} - 1 WHERE {_PK} = %s AND status = '{PENDING}' RETURNING status",
        [when, when, when, attempt_id],
    )
    return None if row is None else str(row[0])

"""Retention and erasure: deleting ``OtpAttempt`` rows, and state no longer in use, in bounded batches.

Each batch selects at most ``batch_size`` primary keys (walking the matching
rows in pk order) and deletes exactly those, re-checking the condition, in its
own short statement. Memory stays flat whatever the table holds, and row locks
last one batch, so sends and verifies keep flowing while a purge runs. Call
these functions outside ``transaction.atomic()``: inside it every batch would
commit only at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from otp.conf import otp_settings
from otp.limits.clock import DAY
from otp.limits.counters import idle_counters
from otp.limits.phone_state import parse_sends
from otp.models import OtpAttempt, PhoneState, VerificationTokenUse
from otp.redaction import mask_phone
from otp.validators.phones import normalize_phone

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
#: Far beyond any sane batch; keeps the ``IN (...)`` list and the locks small.
MAX_BATCH_SIZE = 10_000


@dataclass(frozen=True)
class DeletionResult:
    """What a purge or an erasure did (or, on a dry run, would do)."""

    deleted: int
    batches: int
    dry_run: bool


@dataclass(frozen=True)
class PurgeResult(DeletionResult):
    #: Attempts that expired before this moment were (or would be) deleted.
    cutoff: datetime
    #: Phones' limit rows (send times, failure counts) no longer in use.
    limit_states: int = 0
    #: Prefix and country counters whose windows and blocks are over.
    counters: int = 0
    #: Records of used verification tokens past their expiry.
    token_uses: int = 0


@dataclass(frozen=True)
class EraseResult(DeletionResult):
    #: The number erased, in E.164.
    phone: str


def purge_expired(
    retention_days: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PurgeResult:
    """Delete attempts whose ``expires_at`` is more than ``retention_days`` ago.

    Every status goes, a ``pending`` or ``sending`` row included: past its
    expiry no PIN can be verified any more. A PIN still valid is never touched,
    even with ``retention_days=0``. Running it again deletes nothing new.

    The limit state that would otherwise outlive the attempts goes too (it
    holds phone numbers and prefixes): a phone's row once the phone has no
    attempt left, is not locked and was last sent a code more than a day ago
    (its cooldown and daily cap are over), and a prefix or country counter
    once its block and both its windows are over. Deleting either changes no
    limit decision but the phone's count of failed verifies, which a success
    would also have reset.

    The records of used verification tokens go once the tokens expired (a
    token past its age is refused anyway), whatever ``retention_days``.

    :raises ValueError: ``retention_days`` or ``batch_size`` out of range.
    """
    if not _is_int(retention_days) or retention_days < 0:
        raise ValueError("Retention days must be a non-negative integer.")
    now = now or timezone.now()
    try:
        cutoff = now - timedelta(days=retention_days)
    except OverflowError:
        raise ValueError("Retention days is too large.") from None
    deleted, batches = _delete_in_batches(OtpAttempt.objects.expired_before(cutoff), batch_size, dry_run)
    seconds = int(now.timestamp())
    limit_states, _ = _delete_in_batches(
        _phones_without_attempts(seconds),
        batch_size,
        dry_run,
        only_if=("recent_sends", lambda sends: max(parse_sends(sends), default=0) <= seconds - DAY),
    )
    counters, _ = _delete_in_batches(idle_counters(seconds), batch_size, dry_run)
    token_uses, _ = _delete_in_batches(VerificationTokenUse.objects.filter(expires_at__lt=now), batch_size, dry_run)
    logger.info(
        "OTP retention: %s %d attempts that expired before %s, %d phone limit states, %d rate counters "
        "and %d used verification tokens",
        "would delete" if dry_run else "deleted",
        deleted,
        cutoff.isoformat(),
        limit_states,
        counters,
        token_uses,
    )
    return PurgeResult(
        deleted=deleted,
        batches=batches,
        dry_run=dry_run,
        cutoff=cutoff,
        limit_states=limit_states,
        counters=counters,
        token_uses=token_uses,
    )


def _phones_without_attempts(seconds: int) -> QuerySet[PhoneState]:
    """Limit rows of phones that are not locked or held and have no attempt left.

    A send writes its attempt in the statement that records it on the phone's
    row, so a send racing the delete always has an attempt that keeps the row.
    """
    attempts = OtpAttempt.objects.filter(phone=OuterRef("phone"))
    return PhoneState.objects.filter(locked_until__lte=seconds, send_held_until__lte=seconds).exclude(Exists(attempts))


def erase_phone(phone: str, *, batch_size: int = DEFAULT_BATCH_SIZE, dry_run: bool = False) -> EraseResult:
    """Delete every attempt of ``phone``, whatever its age or status (right to erasure).

    ``phone`` may be in any format the API accepts. A code sent to the number
    while the erasure runs may survive it; run it again after such traffic.

    :raises InvalidPhoneNumber: ``phone`` is not a valid number.
    :raises ValueError: ``batch_size`` out of range.
    """
    phone = normalize_phone(phone, otp_settings.DEFAULT_REGION)
    deleted, batches = _delete_in_batches(OtpAttempt.objects.for_phone(phone), batch_size, dry_run)
    # The number's limit state (send times, failure count) is personal data too.
    limit_state = PhoneState.objects.filter(phone=phone)
    if not dry_run:
        limit_state.delete()
    logger.info(
        "OTP erasure: %s %d attempts of %s", "would delete" if dry_run else "deleted", deleted, mask_phone(phone)
    )
    return EraseResult(deleted=deleted, batches=batches, dry_run=dry_run, phone=phone)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _delete_in_batches(
    matching: QuerySet[Any], batch_size: int, dry_run: bool, *, only_if: tuple[str, Callable[[Any], bool]] | None = None
) -> tuple[int, int]:
    """Delete (or count) ``matching`` batch by batch; returns (rows, batches).

    ``only_if`` is a field and a test of its value that a row must also pass,
    for a condition SQL cannot express on every database.
    """
    if not _is_int(batch_size) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"Batch size must be an integer from 1 to {MAX_BATCH_SIZE}.")
    deleted = batches = 0
    last_pk = 0
    while True:
        # Keyset walk: each batch starts after the last one, so neither a dry
        # run nor rows a delete skipped are ever read twice.
        fields = ("pk", only_if[0]) if only_if else ("pk",)
        rows = list(matching.filter(pk__gt=last_pk).order_by("pk").values_list(*fields)[:batch_size])
        if not rows:
            return deleted, batches
        last_pk = rows[-1][0]
        pks = [row[0] for row in rows if only_if is None or only_if[1](row[1])]
        batches += 1
        if dry_run:
            deleted += len(pks)
        else:
            # The condition is applied again: a row that stopped matching since
            # the select stays.
            deleted += matching.filter(pk__in=pks).delete()[0]

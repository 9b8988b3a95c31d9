"""Conversion monitoring: the share of sent codes that get verified, per prefix and country.

SMS pumping sends many codes that nobody ever enters, so a prefix or country
whose conversion falls far below the usual 60-80 % at real volume is a signal.
:func:`conversion_report` reads the attempts of a rolling window, logs an
``otp_low_conversion`` event for each group under the threshold, and returns
every group. ``manage.py otp_conversion_report`` runs it (e.g. from cron).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from django.db.models import Count, Min, Q, Value
from django.db.models.functions import Length, Substr
from django.utils import timezone

from otp import events
from otp.conf import otp_settings
from otp.models import AttemptStatus, OtpAttempt

# A failed send never reached anyone; everything else counts as sent.
_NOT_SENT = (AttemptStatus.FAILED, AttemptStatus.SENDING)


@dataclass(frozen=True)
class ConversionGroup:
    kind: str  # "prefix" or "country"
    key: str
    sent: int
    verified: int
    flagged: bool

    @property
    def rate(self) -> float:
        return self.verified / self.sent if self.sent else 0.0


def conversion_report(
    *,
    hours: int = 24,
    min_sends: int | None = None,
    threshold: float | None = None,
    now: datetime | None = None,
) -> list[ConversionGroup]:
    """Every prefix and country with sends in the last ``hours``, lowest conversion first."""
    min_sends = otp_settings.CONVERSION_MIN_SENDS if min_sends is None else min_sends
    threshold = otp_settings.CONVERSION_ALERT_THRESHOLD if threshold is None else threshold
    since = (now or timezone.now()) - timedelta(hours=hours)
    strip = otp_settings.PREFIX_STRIP_DIGITS or 0
    rows = (
        OtpAttempt.objects.filter(created_at__gte=since)
        .exclude(status__in=_NOT_SENT)
        .annotate(prefix=Substr("phone", 1, Length("phone") - Value(strip)))
        .values("prefix")
        .annotate(sent=Count("id"), verified=Count("id", filter=Q(status=AttemptStatus.VERIFIED)), sample=Min("phone"))
    )
    countries: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    groups = []
    for row in rows:
        groups.append(_group("prefix", row["prefix"], row["sent"], row["verified"], min_sends, threshold))
        number = phonenumbers.parse(row["sample"])
        region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
            number.country_code or 0
        )
        countries[region][0] += row["sent"]
        countries[region][1] += row["verified"]
    groups += [_group("country", region, sent, ok, min_sends, threshold) for region, (sent, ok) in countries.items()]
    for group in groups:
        if group.flagged:
            events.log_event(
                events.LOW_CONVERSION,
                level=logging.WARNING,
                group=group.kind,
                key=group.key,
                sent=group.sent,
                verified=group.verified,
                hours=hours,
            )
    return sorted(groups, key=lambda g: (g.rate, -g.sent))


def _group(kind: str, key: str, sent: int, verified: int, min_sends: int, threshold: float) -> ConversionGroup:
    flagged = sent >= min_sends and verified / sent < threshold
    return ConversionGroup(kind=kind, key=key, sent=sent, verified=verified, flagged=flagged)

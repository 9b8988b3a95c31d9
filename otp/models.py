"""``OtpAttempt``: one row per PIN the app asked a provider for. Never the PIN."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from otp.redaction import mask_phone


class AttemptStatus(models.TextChoices):
    SENDING = "sending", _("Sending")  # row written, provider not yet answered
    PENDING = "pending", _("Pending")  # delivered, may be verified
    VERIFIED = "verified", _("Verified")
    SUPERSEDED = "superseded", _("Superseded")  # a newer send replaced it
    EXPIRED = "expired", _("Expired")
    EXHAUSTED = "exhausted", _("Attempts exhausted")
    FAILED = "failed", _("Failed to send")
    INVALIDATED = "invalidated", _("Invalidated")  # closed by staff


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    VOICE = "voice", _("Voice")


class OtpAttemptQuerySet(models.QuerySet["OtpAttempt"]):
    def for_phone(self, phone: str) -> OtpAttemptQuerySet:
        return self.filter(phone=phone)

    def pending(self) -> OtpAttemptQuerySet:
        return self.filter(status=AttemptStatus.PENDING)

    def expired_before(self, moment: datetime) -> OtpAttemptQuerySet:
        return self.filter(expires_at__lt=moment)


class OtpAttempt(models.Model):
    phone = models.CharField(_("phone"), max_length=16, help_text=_("E.164, e.g. +14155552671."))
    pin_id = models.CharField(
        _("provider reference"),
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        editable=False,
        help_text=_("The provider's pinId. Secret: never shown or logged."),
    )
    status = models.CharField(_("status"), max_length=16, choices=AttemptStatus.choices, default=AttemptStatus.SENDING)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, default=Channel.SMS)
    purpose = models.CharField(
        _("purpose"),
        max_length=32,
        default="default",
        help_text=_("What the code is for; it verifies only for the same purpose."),
    )
    provider = models.CharField(_("provider"), max_length=32, blank=True)
    verify_slots_used = models.PositiveIntegerField(
        _("verify attempts used"),
        default=0,
        db_column="failed_verifies",
        help_text=_(
            "Verify attempts counted against this code: each takes one before the provider is asked, "
            "and a right PIN gives its one back."
        ),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The authenticated user who asked for the code, if any."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(_("expires"), db_index=True)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    resends = models.PositiveSmallIntegerField(
        _("resends"), default=0, help_text=_("Times the same PIN was delivered again.")
    )

    objects = OtpAttemptQuerySet.as_manager()

    class Meta:
        verbose_name = _("OTP attempt")
        verbose_name_plural = _("OTP attempts")
        ordering = ["-created_at"]
        indexes = [
            # "The newest pending attempt for this phone" is the hot lookup.
            models.Index(fields=["phone", "status", "-id"], name="otp_attempt_phone_status"),
        ]

    def __str__(self) -> str:
        return f"{mask_phone(self.phone)} ({self.status})"

    def is_expired(self, now: datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.expires_at


class PhoneState(models.Model):
    """Per-phone limit state, one row per number, written by compare and swap (see otp.limits).

    Times are Unix seconds (integers) so the limit SQL is the same on every
    database.
    """

    phone = models.CharField(_("phone"), max_length=16, unique=True)
    recent_sends = models.TextField(
        _("recent sends"),
        blank=True,
        default="",
        help_text=_("Comma-separated Unix times of the sends of the last 24 hours."),
    )
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    locked_until = models.BigIntegerField(_("locked until"), default=0, help_text=_("Unix time; 0 when not locked."))
    # A default in the database too: the limit statements insert rows in SQL.
    send_held_until = models.BigIntegerField(
        _("sends held until"),
        default=0,
        db_default=0,
        help_text=_("Unix time before which no code is sent: the provider throttled this number. 0 when not held."),
    )

    class Meta:
        verbose_name = _("phone limit state")
        verbose_name_plural = _("phone limit states")

    def __str__(self) -> str:
        return mask_phone(self.phone)


class RateCounter(models.Model):
    """A sliding-window send counter for a prefix, a country or the whole site.

    ``count`` counts the current fixed window (``window_index`` = Unix time //
    window length) and ``previous_count`` the one before; the estimate weighs
    the previous window by how much of it still overlaps the sliding window.
    """

    key = models.CharField(_("key"), max_length=64, unique=True)
    window_index = models.BigIntegerField(_("window"))
    count = models.PositiveIntegerField(_("count"), default=0)
    previous_count = models.PositiveIntegerField(_("previous count"), default=0)
    blocked_until = models.BigIntegerField(_("blocked until"), default=0, help_text=_("Unix time; 0 when open."))
    alert_level = models.PositiveSmallIntegerField(
        _("alert level"),
        default=0,
        help_text=_("Highest budget percentage already alerted in this window."),
    )

    class Meta:
        verbose_name = _("rate counter")
        verbose_name_plural = _("rate counters")

    def __str__(self) -> str:
        return self.key


class VerificationTokenUse(models.Model):
    """A ``verificationToken`` that was accepted once; it is refused from then on (see otp.tokens).

    Kept until the token would have expired anyway; ``otp_cleanup`` deletes it after that.
    """

    token_id = models.CharField(_("token id"), max_length=32, unique=True)
    expires_at = models.DateTimeField(_("expires"), db_index=True)

    class Meta:
        verbose_name = _("used verification token")
        verbose_name_plural = _("used verification tokens")

    def __str__(self) -> str:
        return self.token_id

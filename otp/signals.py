"""Signals the app sends. Receivers must accept ``**kwargs``.

``code_sent``
    After the provider accepted a send or a resend.

    :param sender: :class:`otp.models.OtpAttempt`
    :param attempt: the :class:`~otp.models.OtpAttempt`
    :param phone: the number, E.164
    :param user: the authenticated user who asked for it, or ``None``
    :param purpose: what the code is for
    :param channel: ``"sms"`` or ``"voice"``
    :param resend: ``True`` when the same PIN was delivered again

``phone_verified``
    Sent inside the transaction that marks an attempt verified, once per
    attempt. A receiver's database writes commit or roll back with it; an
    exception in a receiver undoes the verification and answers 500.

    :param sender: :class:`otp.models.OtpAttempt`
    :param attempt: the verified :class:`~otp.models.OtpAttempt`
    :param phone: the verified number, E.164
    :param user: the authenticated user who asked for the code, or ``None``
    :param purpose: what the code was for

``verification_failed``
    After a verify that did not succeed (wrong, expired, used, exhausted...).

    :param sender: :class:`otp.models.OtpAttempt`
    :param phone: the number, E.164
    :param purpose: the purpose asked for
    :param reason: a short machine-readable reason (never shown to clients)

``send_blocked``
    When a limit or the destination policy refused a send or resend.

    :param sender: :class:`otp.models.OtpAttempt`
    :param phone: the number, E.164
    :param purpose: the purpose asked for
    :param reason: a short machine-readable reason
"""

from __future__ import annotations

from django.dispatch import Signal

code_sent = Signal()
phone_verified = Signal()
verification_failed = Signal()
send_blocked = Signal()

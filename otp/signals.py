"""Signals the app sends.

``phone_verified``
    Sent inside the transaction that marks an attempt verified, once per
    attempt. A receiver's database writes commit or roll back with it; an
    exception in a receiver undoes the verification and answers 500.

    :param sender: :class:`otp.models.OtpAttempt`
    :param attempt: the verified :class:`~otp.models.OtpAttempt`
    :param phone: the verified number, E.164
    :param user: the authenticated user who asked for the code, or ``None``
"""

from __future__ import annotations

from django.dispatch import Signal

phone_verified = Signal()

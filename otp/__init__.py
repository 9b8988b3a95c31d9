"""SMS one-time-password verification for Django, delivered by Infobip 2FA."""

__version__ = "0.1.0"

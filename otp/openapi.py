"""Moved to :mod:`otp.api.openapi`; this path warns and goes in the next release."""

from otp.moved import moved_to

__getattr__ = moved_to(__name__, "otp.api.openapi")

"""Pytest fixtures for sites that test their own flows with the app.

Enable them in your ``conftest.py`` (pytest-django provides ``settings``)::

    pytest_plugins = ["otp.testing"]

    def test_signup(client, otp_outbox):
        client.post("/send-otp", {"phoneNumber": "+14155552671"}, content_type="application/json")
        pin = otp_outbox[-1].pin
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from otp.providers import locmem


@pytest.fixture
def otp_outbox(settings: Any) -> Iterator[list[locmem.SentMessage]]:
    """Switch the app to the in-memory provider for one test and yield its outbox.

    Each :class:`~otp.providers.locmem.SentMessage` has ``phone``, ``pin``,
    ``pin_id``, ``text`` and ``channel``. ``locmem.fail_next_send(exc)``
    makes the next send raise, to test error paths.
    """
    settings.OTP = {**(getattr(settings, "OTP", None) or {}), "PROVIDER": "otp.providers.locmem.LocmemProvider"}
    locmem.reset()
    yield locmem.outbox
    locmem.reset()

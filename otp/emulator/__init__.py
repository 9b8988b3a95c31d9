"""A local emulator of Infobip's 2FA HTTP API, for development, tests and benchmarks.

``manage.py otp_emulator`` runs it; tests start one in process with
:func:`running_emulator`. Modules: ``formats`` (time strings), ``validation``
(request bodies), ``state`` (the PIN state machine), ``faults`` (switches),
``api`` (routing), ``wire`` (HTTP/1.1), ``net`` (loopback checks) and
``server`` (asyncio).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from otp.emulator.faults import Fault, FaultPlan
from otp.emulator.net import NotLoopback
from otp.emulator.server import EmulatorServer
from otp.emulator.state import Emulator

__all__ = ["Emulator", "EmulatorServer", "Fault", "FaultPlan", "NotLoopback", "running_emulator"]


@contextmanager
def running_emulator(api_key: str = "emulator-test-key", **options: Any) -> Iterator[EmulatorServer]:
    """An :class:`EmulatorServer` on a free loopback port for the ``with`` block."""
    server = EmulatorServer(api_keys=[api_key], **options)
    with server.running():
        yield server

"""Time as the limits count it: whole seconds, and waits told in whole minutes."""

from __future__ import annotations

import math
import time

DAY = 24 * 3600
HOUR = 3600
# Retry-After is rounded up to whole minutes: the client learns "later", not
# a precise window edge.
RETRY_AFTER_STEP = 60


def coarse(seconds: float) -> int:
    """``seconds`` rounded up to whole minutes, at least one: what a client is told to wait."""
    return max(RETRY_AFTER_STEP, math.ceil(seconds / RETRY_AFTER_STEP) * RETRY_AFTER_STEP)


def now_seconds() -> int:
    return int(time.time())

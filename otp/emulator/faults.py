"""Fault switches: added latency and the next N answers going wrong.

A fault targets one route group (``send``, ``resend``, ``verify``, ``manage``
or ``all``) and fires ``count`` times (``None``: until cleared). Faults that
*replace* the answer (``error``, ``rate_limit``, ``redirect``) fire before the
request is handled, so nothing happens upstream. Faults that *lose or corrupt*
the answer (``hang``, ``reset``, ``malformed``, ``html``, ``empty``,
``wrong_types``, ``mismatched_pin_id``) fire after it was handled: the PIN was
sent or the attempt used, as when a real answer gets lost on the way back.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

from otp.emulator.errors import ApiError
from otp.emulator.formats import compact_json

GROUPS = ("all", "send", "resend", "verify", "manage")
BEFORE = ("error", "rate_limit", "redirect")
AFTER = ("hang", "reset", "malformed", "html", "empty", "wrong_types", "mismatched_pin_id")
KINDS = BEFORE + AFTER


@dataclass(frozen=True)
class Fault:
    kind: str
    route: str = "all"
    count: int | None = 1
    status: int = 500  # for "error"
    retry_after: int = 1  # seconds, for "rate_limit"
    location: str = "https://example.invalid/2fa/2/moved"  # for "redirect"

    def matches(self, group: str) -> bool:
        return self.route in ("all", group)


def fault_from_json(data: object) -> Fault:
    """A validated :class:`Fault`; raises ``ValueError`` naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("a fault must be a JSON object")
    unknown = set(data) - set(Fault.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
    fault = Fault(**data)
    if fault.kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if fault.route not in GROUPS:
        raise ValueError(f"route must be one of {', '.join(GROUPS)}")
    if fault.count is not None and (not _is_int(fault.count) or fault.count < 1):
        raise ValueError("count must be a positive integer or null")
    if not _is_int(fault.status) or not 300 <= fault.status <= 599:
        raise ValueError("status must be an HTTP status from 300 to 599")
    if not _is_int(fault.retry_after) or fault.retry_after < 0:
        raise ValueError("retry_after must be a non-negative integer")
    if not isinstance(fault.location, str):
        raise ValueError("location must be a string")
    return fault


def parse_fault_spec(spec: str) -> Fault:
    """``"error,status=503,route=verify,count=2"`` -> Fault (``count=always``: no limit)."""
    kind, *pairs = spec.split(",")
    data: dict[str, Any] = {"kind": kind.strip()}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"{pair!r} is not name=value")
        name, value = name.strip(), value.strip()
        if name == "count" and value == "always":
            data[name] = None
        else:
            data[name] = int(value) if value.isdigit() else value
    return fault_from_json(data)


def parse_latency_spec(spec: str) -> tuple[str, int]:
    """``"50"`` -> ("all", 50); ``"verify=200"`` -> ("verify", 200)."""
    route, sep, value = spec.rpartition("=")
    route = route.strip() if sep else "all"
    if route not in GROUPS or not value.strip().isdigit():
        raise ValueError(f"{spec!r} is not MS or ROUTE=MS with ROUTE in {', '.join(GROUPS)}")
    return route, int(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class FaultPlan:
    """The faults and latencies of a run; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency_ms: dict[str, int] = {}
        self.faults: list[Fault] = []

    def clear(self) -> None:
        with self._lock:
            self.latency_ms = {}
            self.faults = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def set_latency(self, route: str, ms: int) -> None:
        with self._lock:
            if ms:
                self.latency_ms[route] = ms
            else:
                self.latency_ms.pop(route, None)

    def latency(self, group: str) -> float:
        """Seconds to wait before answering ``group``; a route's own value wins over ``all``."""
        ms = self.latency_ms.get(group, self.latency_ms.get("all", 0))
        return ms / 1000

    def take(self, group: str) -> Fault | None:
        """The first fault for ``group``, counted as fired."""
        if not self.faults:  # the common case, without taking the lock
            return None
        with self._lock:
            for index, fault in enumerate(self.faults):
                if fault.matches(group):
                    if fault.count is None:
                        return fault
                    if fault.count > 1:
                        self.faults[index] = replace(fault, count=fault.count - 1)
                    else:
                        del self.faults[index]
                    return fault
        return None

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return {"latencyMs": dict(self.latency_ms), "faults": [asdict(f) for f in self.faults]}


def replacement(fault: Fault) -> tuple[int, dict[str, str], bytes] | ApiError:
    """What a BEFORE fault answers instead of the real handler."""
    if fault.kind == "rate_limit":
        return ApiError(429, headers={"Retry-After": str(fault.retry_after)})
    if fault.kind == "redirect":
        return 302, {"Location": fault.location}, b""
    return ApiError(fault.status, "Emulated upstream failure")


def corrupt(fault: Fault, data: Any) -> tuple[str, bytes]:
    """(content type, body) of an AFTER fault that mangles the answer ``data``."""
    if fault.kind == "html":
        return "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    if fault.kind == "empty":
        return "application/json", b""
    if fault.kind == "malformed":
        return "application/json", compact_json(data)[:-1] + b',"'
    if fault.kind == "mismatched_pin_id" and isinstance(data, dict) and "pinId" in data:
        data = {**data, "pinId": "0" * 32 if data["pinId"] != "0" * 32 else "F" * 32}
    elif fault.kind == "wrong_types":
        data = _stringify(data)
    return "application/json", compact_json(data)


def _stringify(data: Any) -> Any:
    """Booleans and numbers as strings: ``"verified": "true"``."""
    if isinstance(data, dict):
        return {k: _stringify(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_stringify(v) for v in data]
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, (int, float)):
        return str(data)
    return data

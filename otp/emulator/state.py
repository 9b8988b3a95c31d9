"""The emulator's state machine: applications, templates, PINs and limits.

No sockets here, so it is unit tested directly with an injected ``clock``.
Semantics follow the reference's emulator choices (§5, §8): sliding-window
limits, verify checks in the order limit -> unknown -> exhausted -> expired ->
compare, resend of the same PIN without a new time to live.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otp.emulator.errors import ApiError, bad_request, not_found
from otp.emulator.formats import Duration, Limit, parse_duration, parse_limit
from otp.emulator.validation import DEFAULT_PIN_LENGTH, PIN_PLACEHOLDER, SendRequest

WRONG_PIN = "WRONG_PIN"
TTL_EXPIRED = "TTL_EXPIRED"
NO_MORE_PIN_ATTEMPTS = "NO_MORE_PIN_ATTEMPTS"

_ALPHABETS = {
    "NUMERIC": "0123456789",
    "ALPHA": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "HEX": "0123456789ABCDEF",
    "ALPHANUMERIC": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
}
# Infobip's documented defaults (§3.2).
DEFAULT_CONFIGURATION: dict[str, Any] = {
    "pinAttempts": 10,
    "allowMultiplePinVerifications": True,
    "pinTimeToLive": parse_duration("15m"),
    "verifyPinLimit": parse_limit("1/3s"),
    "sendPinPerApplicationLimit": parse_limit("10000/1d"),
    "sendPinPerPhoneNumberLimit": parse_limit("3/1d"),
}
# Dead PINs are forgotten this long after they expire, so long runs stay small.
_FORGET_AFTER = 3600.0
# Seconds (of the clock) between sweeps of idle limit windows.
_SWEEP_EVERY = 60.0
# Limit-window key kind -> the configuration field holding its limit.
_LIMIT_FIELDS = {"app": "sendPinPerApplicationLimit", "phone": "sendPinPerPhoneNumberLimit", "verify": "verifyPinLimit"}


def new_id() -> str:
    """32 upper-case hex digits, the shape of Infobip's IDs."""
    return secrets.token_hex(16).upper()


@dataclass
class Application:
    application_id: str
    name: str
    enabled: bool
    configuration: dict[str, Any]
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        config = {k: str(v) if isinstance(v, (Duration, Limit)) else v for k, v in self.configuration.items()}
        return {
            "applicationId": self.application_id,
            "name": self.name,
            "configuration": config,
            "enabled": self.enabled,
        }


@dataclass
class Pin:
    pin_id: str
    application_id: str
    message_id: str
    channel: str
    to: str
    pin: str
    text: str
    expires_at: float
    attempts_left: int
    verified: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "pinId": self.pin_id,
            "pin": self.pin,
            "to": self.to,
            "text": self.text,
            "channel": self.channel,
            "applicationId": self.application_id,
            "messageId": self.message_id,
            "verified": self.verified,
            "attemptsRemaining": self.attempts_left,
        }


def random_pin(alphabet: str, length: int) -> str:
    """A uniform PIN from the OS's CSPRNG, drawn as one number (one read of entropy)."""
    base = len(alphabet)
    value = secrets.randbelow(base**length)
    digits = []
    for _ in range(length):
        value, index = divmod(value, base)
        digits.append(alphabet[index])
    return "".join(digits)


def template_json(app_id: str, msg_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"messageId": msg_id, "applicationId": app_id, "pinPlaceholder": PIN_PLACEHOLDER, **fields}


def render(text: str, pin: str, placeholders: dict[str, str]) -> str:
    for name, value in placeholders.items():
        text = text.replace("{{" + name + "}}", value)
    return text.replace(PIN_PLACEHOLDER, pin)


class Emulator:
    """All state of one emulated Infobip account; every method is thread-safe.

    ``send_limits`` / ``verify_limit`` switch the applications' limits off for
    a whole run (benchmarks); ``unreachable`` numbers get ``MESSAGE_NOT_SENT``.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        send_limits: bool = True,
        verify_limit: bool = True,
        create_status: int = 200,
    ) -> None:
        self.clock = clock
        self.send_limits = send_limits
        self.verify_limit = verify_limit
        self.create_status = create_status
        self.unreachable: set[str] = set()
        self.apps: dict[str, Application] = {}
        self._lock = threading.Lock()
        self.reset()

    def reset(self, *, applications: bool = False) -> None:
        """Forget PINs, limit windows and counters (and applications if asked)."""
        with self._lock:
            self.pins: dict[str, Pin] = {}
            self.last_by_phone: dict[str, str] = {}
            self.windows: dict[tuple[str, ...], deque[float]] = {}
            self.counts: Counter[str] = Counter()
            # PIN IDs in send order, to forget dead PINs without scanning them all.
            self._send_order: deque[tuple[float, str]] = deque()
            self._next_sweep = self.clock() + _SWEEP_EVERY
            if applications:
                self.apps = {}

    # -- applications and templates -------------------------------------------

    def create_application(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        configuration: dict[str, Any] | None = None,
        application_id: str | None = None,
    ) -> Application:
        app = Application(
            application_id or new_id(),
            name,
            True if enabled is None else enabled,
            {**DEFAULT_CONFIGURATION, **(configuration or {})},
        )
        with self._lock:
            self.apps[app.application_id] = app
        return app

    def application(self, app_id: str) -> Application:
        app = self.apps.get(app_id)
        if app is None:
            raise not_found(f"Application {app_id} not found")
        return app

    def update_application(
        self,
        app_id: str,
        name: str,
        *,
        enabled: bool | None,
        configuration: dict[str, Any],
    ) -> Application:
        """PUT is a merge: fields left out keep their values (§5.8)."""
        with self._lock:
            app = self.application(app_id)
            app.name = name
            if enabled is not None:
                app.enabled = enabled
            app.configuration = {**app.configuration, **configuration}
            return app

    def create_template(self, app_id: str, fields: dict[str, Any], *, message_id: str | None = None) -> str:
        msg_id = message_id or new_id()
        with self._lock:
            self.application(app_id).templates[msg_id] = {"pinLength": DEFAULT_PIN_LENGTH, "language": "en", **fields}
        return msg_id

    def template(self, app_id: str, msg_id: str) -> dict[str, Any]:
        template = self.application(app_id).templates.get(msg_id)
        if template is None:
            raise not_found(f"Message {msg_id} not found")
        return template

    def update_template(self, app_id: str, msg_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            template = self.template(app_id, msg_id)
            template.update(fields)
            return template

    def seed(
        self,
        *,
        application_id: str | None = None,
        message_id: str | None = None,
        configuration: dict[str, Any] | None = None,
        template: dict[str, Any] | None = None,
    ) -> tuple[str, str]:
        """One ready application and SMS template, so a site runs without provisioning."""
        app = self.create_application("Emulated 2FA", configuration=configuration, application_id=application_id)
        fields = {
            "messageText": "Your verification code is {{pin}}",
            "pinType": "NUMERIC",
            "senderId": "InfoSMS",
            **(template or {}),
        }
        return app.application_id, self.create_template(app.application_id, fields, message_id=message_id)

    # -- PINs ------------------------------------------------------------------

    def send_pin(self, request: SendRequest, *, channel: str = "sms", nc_needed: bool = True) -> dict[str, Any]:
        """Create and "deliver" a PIN; the answer of ``POST /2fa/2/pin[/voice]``."""
        with self._lock:
            now = self.clock()
            app = self.apps.get(request.application_id)
            template = app.templates.get(request.message_id) if app else None
            if app is None or template is None:
                # Send operations document no 404: unknown IDs in a body are a 400.
                field_name = "applicationId" if app is None else "messageId"
                raise bad_request({field_name: ["not found"]})
            self._check_enabled(app)
            self._take_send_slots(app, request.to, now)
            pin_value = random_pin(_ALPHABETS[template["pinType"]], template["pinLength"])
            pin = Pin(
                new_id(),
                app.application_id,
                request.message_id,
                channel,
                request.to,
                pin_value,
                render(template["messageText"], pin_value, request.placeholders),
                now + app.configuration["pinTimeToLive"].seconds,
                app.configuration["pinAttempts"],
            )
            self.pins[pin.pin_id] = pin
            self.last_by_phone[pin.to] = pin.pin_id
            self._send_order.append((pin.expires_at, pin.pin_id))
            self._forget_dead(now)
            answer = self._delivered(pin, nc_needed=nc_needed)
            if request.track_delivery:
                answer["externalMessageId"] = str(uuid.uuid4())
            return answer

    def resend_pin(self, pin_id: str, *, channel: str, placeholders: dict[str, str]) -> dict[str, Any]:
        """Deliver the same PIN again: no new ``pinId``, no new time to live."""
        with self._lock:
            now = self.clock()
            pin = self._pin(pin_id)
            app = self.apps[pin.application_id]
            self._check_enabled(app)
            if now >= pin.expires_at or pin.attempts_left <= 0 or self._used(pin, app):
                raise ApiError(400, "PIN is expired, used or has no attempts left")
            self._take_send_slots(app, pin.to, now)
            template = app.templates.get(pin.message_id, {"messageText": PIN_PLACEHOLDER})
            pin.text = render(template["messageText"], pin.pin, placeholders)
            pin.channel = channel
            self.counts["resent"] += 1
            self.last_by_phone[pin.to] = pin.pin_id
            return self._delivered(pin, nc_needed=True)

    def verify_pin(self, pin_id: str, pin_value: str) -> dict[str, Any]:
        """The answer of ``POST /2fa/2/pin/{pinId}/verify`` (§5.3 order)."""
        with self._lock:
            now = self.clock()
            self.counts["verifyRequests"] += 1
            pin = self._pin(pin_id)
            app = self.apps[pin.application_id]
            if self.verify_limit:
                self._take_slot(("verify", app.application_id, pin.to), app.configuration["verifyPinLimit"], now)
            self._check_enabled(app)
            answer: dict[str, Any] = {"pinId": pin.pin_id, "msisdn": pin.to}
            if pin.attempts_left <= 0 or self._used(pin, app):
                return {**answer, "verified": False, "attemptsRemaining": 0, "pinError": NO_MORE_PIN_ATTEMPTS}
            if now >= pin.expires_at:
                return {**answer, "verified": False, "attemptsRemaining": pin.attempts_left, "pinError": TTL_EXPIRED}
            if secrets.compare_digest(pin.pin.encode(), pin_value.encode()):
                pin.verified = True
                self.counts["verified"] += 1
                return {**answer, "verified": True, "attemptsRemaining": 0}
            pin.attempts_left -= 1
            self.counts["wrongPin"] += 1
            return {**answer, "verified": False, "attemptsRemaining": pin.attempts_left, "pinError": WRONG_PIN}

    # -- read-back for tests and benchmarks ------------------------------------

    def last_pin(self, to: str) -> Pin | None:
        with self._lock:
            pin_id = self.last_by_phone.get(to.lstrip("+"))
            return self.pins.get(pin_id) if pin_id else None

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                name: self.counts[name]
                for name in (
                    "smsSent",
                    "voiceCalls",
                    "resent",
                    "notSent",
                    "verifyRequests",
                    "verified",
                    "wrongPin",
                    "rateLimited",
                )
            } | {"pinsStored": len(self.pins)}

    # -- helpers (called with the lock held) -----------------------------------

    def _pin(self, pin_id: str) -> Pin:
        pin = self.pins.get(pin_id)
        if pin is None:
            raise not_found(f"PIN {pin_id} not found")
        return pin

    @staticmethod
    def _used(pin: Pin, app: Application) -> bool:
        return pin.verified and not app.configuration["allowMultiplePinVerifications"]

    @staticmethod
    def _check_enabled(app: Application) -> None:
        if not app.enabled:
            raise ApiError(403, "Application is disabled")

    def _take_send_slots(self, app: Application, to: str, now: float) -> None:
        if not self.send_limits:
            return
        keys = [
            (("app", app.application_id), app.configuration["sendPinPerApplicationLimit"]),
            (("phone", app.application_id, to), app.configuration["sendPinPerPhoneNumberLimit"]),
        ]
        # Check both before recording either, so a refused send uses no slot.
        for key, limit in keys:
            self._check_slot(key, limit, now)
        for key, _limit in keys:
            self.windows[key].append(now)

    def _check_slot(self, key: tuple[str, ...], limit: Limit, now: float) -> None:
        window = self.windows.setdefault(key, deque())
        while window and window[0] <= now - limit.window.seconds:
            window.popleft()
        if len(window) >= limit.attempts:
            self.counts["rateLimited"] += 1
            retry = max(1, math.ceil(window[0] + limit.window.seconds - now))
            raise ApiError(429, headers={"Retry-After": str(retry)})

    def _take_slot(self, key: tuple[str, ...], limit: Limit, now: float) -> None:
        self._check_slot(key, limit, now)
        self.windows[key].append(now)

    def _delivered(self, pin: Pin, *, nc_needed: bool) -> dict[str, Any]:
        reachable = pin.to not in self.unreachable
        if pin.channel == "voice":
            self.counts["voiceCalls" if reachable else "notSent"] += 1
            return {
                "pinId": pin.pin_id,
                "to": pin.to,
                "callStatus": "PENDING_ACCEPTED" if reachable else "MESSAGE_NOT_SENT",
            }
        self.counts["smsSent" if reachable else "notSent"] += 1
        answer = {"pinId": pin.pin_id, "to": pin.to}
        if nc_needed:
            answer["ncStatus"] = "NC_DESTINATION_REACHABLE" if reachable else "NC_DESTINATION_NOT_REACHABLE"
        answer["smsStatus"] = "MESSAGE_SENT" if reachable else "MESSAGE_NOT_SENT"
        return answer

    def _forget_dead(self, now: float) -> None:
        # Applications may differ in time to live, so this is send order, not
        # strictly expiry order: a long-lived PIN only delays the ones behind it.
        order = self._send_order
        while order and order[0][0] + _FORGET_AFTER < now:
            _, pin_id = order.popleft()
            pin = self.pins.pop(pin_id, None)
            if pin is not None and self.last_by_phone.get(pin.to) == pin_id:
                del self.last_by_phone[pin.to]
        if now >= self._next_sweep:
            self._next_sweep = now + _SWEEP_EVERY
            self._sweep_windows(now)

    def _sweep_windows(self, now: float) -> None:
        for key in list(self.windows):
            app = self.apps.get(key[1])
            window = self.windows[key]
            if app is not None:
                span = app.configuration[_LIMIT_FIELDS[key[0]]].window.seconds
                while window and window[0] <= now - span:
                    window.popleft()
            if not window or app is None:
                del self.windows[key]

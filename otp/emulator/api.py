"""Routing and handlers: the Infobip 2FA endpoints and the control API.

Transport-free: :meth:`Api.handle` takes a parsed :class:`Request` and returns
an :class:`Answer`, so routing, auth and envelopes are tested without sockets.
The control API lives under ``/_emulator/``, needs no key, and is never
delayed or faulted.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from otp.emulator import validation
from otp.emulator.errors import ApiError, bad_request, not_found
from otp.emulator.faults import FaultPlan, fault_from_json, parse_latency_spec
from otp.emulator.net import host_of, is_loopback
from otp.emulator.state import Emulator, template_json

JSON = "application/json;charset=UTF-8"
CONTROL_PREFIX = "/_emulator/"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


@dataclass
class Answer:
    """A response before encoding; ``data`` is JSON unless ``body`` is given."""

    status: int = 200
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str = JSON

    @classmethod
    def from_error(cls, error: ApiError) -> Answer:
        return cls(error.status, error.envelope(), dict(error.headers))


Handler = Callable[..., Answer]

# (method, path pattern, group, handler name); the hot paths come first.
_ROUTES: list[tuple[str, str, str, str]] = [
    ("POST", r"/2fa/2/pin/(?P<pin_id>[^/]+)/verify", "verify", "verify"),
    ("POST", r"/2fa/2/pin", "send", "send_sms"),
    ("POST", r"/2fa/2/pin/voice", "send", "send_voice"),
    ("POST", r"/2fa/2/pin/(?P<pin_id>[^/]+)/resend", "resend", "resend_sms"),
    ("POST", r"/2fa/2/pin/(?P<pin_id>[^/]+)/resend/voice", "resend", "resend_voice"),
    ("GET", r"/2fa/2/applications", "manage", "list_apps"),
    ("POST", r"/2fa/2/applications", "manage", "create_app"),
    ("GET", r"/2fa/2/applications/(?P<app_id>[^/]+)", "manage", "get_app"),
    ("PUT", r"/2fa/2/applications/(?P<app_id>[^/]+)", "manage", "update_app"),
    ("GET", r"/2fa/2/applications/(?P<app_id>[^/]+)/messages", "manage", "list_templates"),
    ("POST", r"/2fa/2/applications/(?P<app_id>[^/]+)/messages", "manage", "create_template"),
    ("GET", r"/2fa/2/applications/(?P<app_id>[^/]+)/messages/(?P<msg_id>[^/]+)", "manage", "get_template"),
    ("PUT", r"/2fa/2/applications/(?P<app_id>[^/]+)/messages/(?P<msg_id>[^/]+)", "manage", "update_template"),
    ("GET", r"/_emulator/health", "control", "health"),
    ("GET", r"/_emulator/stats", "control", "stats"),
    ("GET", r"/_emulator/pins/last", "control", "last_pin"),
    ("GET", r"/_emulator/pins/(?P<pin_id>[^/]+)", "control", "get_pin"),
    ("POST", r"/_emulator/reset", "control", "reset"),
    ("GET", r"/_emulator/faults", "control", "get_faults"),
    ("POST", r"/_emulator/faults", "control", "add_faults"),
    ("DELETE", r"/_emulator/faults", "control", "clear_faults"),
    ("PUT", r"/_emulator/latency", "control", "set_latency"),
    ("GET", r"/_emulator/limits", "control", "get_limits"),
    ("PUT", r"/_emulator/limits", "control", "set_limits"),
    ("PUT", r"/_emulator/unreachable", "control", "set_unreachable"),
]
_COMPILED = [(method, re.compile(pattern), group, name) for method, pattern, group, name in _ROUTES]


def _json_body(request: Request, *, optional: bool = False) -> Any:
    if not request.body.strip():
        if optional:
            return None
        raise bad_request({"body": ["is required"]})
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise bad_request({"body": ["is not valid JSON"]}) from None


class Api:
    """Dispatches requests to the emulator's state and fault plan."""

    def __init__(self, emulator: Emulator, faults: FaultPlan, api_keys: Iterable[str]) -> None:
        self.emulator = emulator
        self.faults = faults
        self.api_keys = [key.encode() for key in api_keys]

    def resolve(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]]:
        """(group, handler, path parameters); raises 404 or 405."""
        allowed = False
        for route_method, pattern, group, name in _COMPILED:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method != method:
                allowed = True
                continue
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            return group, getattr(self, f"_{name}"), params
        raise ApiError(405) if allowed else not_found(f"No route for {path}")

    def handle(self, request: Request) -> Answer:
        """Resolve, authenticate and run ``request``; every failure is an envelope."""
        try:
            route = self.resolve(request.method, request.path)
        except ApiError as route_error:
            error = route_error
            if not request.path.startswith(CONTROL_PREFIX):
                try:  # no route says nothing to a caller without a key
                    self._authenticate(request)
                except ApiError as auth_error:
                    error = auth_error
            return Answer.from_error(error)
        return self.run(*route, request)

    def run(self, group: str, handler: Handler, params: dict[str, str], request: Request) -> Answer:
        try:
            if group == "control":
                # A browser page rebinding its DNS to 127.0.0.1 still sends its own Host.
                if not is_loopback(host_of(request.headers.get("host", ""))):
                    raise ApiError(403, "The control API answers loopback Host headers only")
            else:
                self._authenticate(request)
            return handler(request, **params)
        except ApiError as err:
            return Answer.from_error(err)

    def _authenticate(self, request: Request) -> None:
        scheme, _, key = request.headers.get("authorization", "").strip().partition(" ")
        given = key.strip().encode()
        # Compare against every key, so timing says nothing about which one is close.
        matched = [hmac.compare_digest(given, known) for known in self.api_keys]
        if scheme.lower() != "app" or not given or not any(matched):
            raise ApiError(401)

    # -- PINs ------------------------------------------------------------------

    def _send_sms(self, request: Request) -> Answer:
        raw = request.query.get("ncNeeded", "true").lower()
        if raw not in ("true", "false"):
            raise bad_request({"ncNeeded": ["must be true or false"]})
        send = validation.send_request(_json_body(request))
        return Answer(data=self.emulator.send_pin(send, channel="sms", nc_needed=raw == "true"))

    def _send_voice(self, request: Request) -> Answer:
        send = validation.send_request(_json_body(request))
        return Answer(data=self.emulator.send_pin(send, channel="voice"))

    def _resend(self, request: Request, pin_id: str, channel: str) -> Answer:
        placeholders = validation.resend_request(_json_body(request, optional=True))
        return Answer(data=self.emulator.resend_pin(pin_id, channel=channel, placeholders=placeholders))

    def _resend_sms(self, request: Request, pin_id: str) -> Answer:
        return self._resend(request, pin_id, "sms")

    def _resend_voice(self, request: Request, pin_id: str) -> Answer:
        return self._resend(request, pin_id, "voice")

    def _verify(self, request: Request, pin_id: str) -> Answer:
        pin = validation.verify_request(_json_body(request))
        return Answer(data=self.emulator.verify_pin(pin_id, pin))

    # -- applications and templates -------------------------------------------

    def _list_apps(self, request: Request) -> Answer:
        return Answer(data=[app.as_json() for app in list(self.emulator.apps.values())])

    def _create_app(self, request: Request) -> Answer:
        name, enabled, config = validation.application_request(_json_body(request))
        app = self.emulator.create_application(name, enabled=enabled, configuration=config)
        return Answer(self.emulator.create_status, app.as_json())

    def _get_app(self, request: Request, app_id: str) -> Answer:
        return Answer(data=self.emulator.application(app_id).as_json())

    def _update_app(self, request: Request, app_id: str) -> Answer:
        self.emulator.application(app_id)  # 404 before 400
        name, enabled, config = validation.application_request(_json_body(request))
        app = self.emulator.update_application(app_id, name, enabled=enabled, configuration=config)
        return Answer(data=app.as_json())

    def _list_templates(self, request: Request, app_id: str) -> Answer:
        templates = list(self.emulator.application(app_id).templates.items())
        return Answer(data=[template_json(app_id, msg_id, fields) for msg_id, fields in templates])

    def _create_template(self, request: Request, app_id: str) -> Answer:
        self.emulator.application(app_id)
        fields = validation.template_request(_json_body(request), partial=False)
        msg_id = self.emulator.create_template(app_id, fields)
        return Answer(data=template_json(app_id, msg_id, self.emulator.template(app_id, msg_id)))

    def _get_template(self, request: Request, app_id: str, msg_id: str) -> Answer:
        return Answer(data=template_json(app_id, msg_id, self.emulator.template(app_id, msg_id)))

    def _update_template(self, request: Request, app_id: str, msg_id: str) -> Answer:
        self.emulator.template(app_id, msg_id)
        fields = validation.template_request(_json_body(request), partial=True)
        return Answer(data=template_json(app_id, msg_id, self.emulator.update_template(app_id, msg_id, fields)))

    # -- control API -----------------------------------------------------------

    def _health(self, request: Request) -> Answer:
        return Answer(data={"status": "ok"})

    def _stats(self, request: Request) -> Answer:
        return Answer(data=self.emulator.stats())

    def _last_pin(self, request: Request) -> Answer:
        to = validation.phone_digits(request.query.get("to", ""))
        if to is None:
            raise bad_request({"to": ["must be a phone number"]})
        pin = self.emulator.last_pin(to)
        if pin is None:
            raise not_found(f"No PIN was sent to {to}")
        return Answer(data=pin.as_json())

    def _get_pin(self, request: Request, pin_id: str) -> Answer:
        pin = self.emulator.pins.get(pin_id)
        if pin is None:
            raise not_found(f"PIN {pin_id} not found")
        return Answer(data=pin.as_json())

    def _reset(self, request: Request) -> Answer:
        body = _json_body(request, optional=True) or {}
        everything = isinstance(body, dict) and body.get("applications") is True
        self.emulator.reset(applications=everything)
        self.faults.clear()
        return Answer(data={"reset": True, "applications": everything})

    def _get_faults(self, request: Request) -> Answer:
        return Answer(data=self.faults.as_json())

    def _add_faults(self, request: Request) -> Answer:
        body = _json_body(request)
        try:
            faults = [fault_from_json(item) for item in (body if isinstance(body, list) else [body])]
        except (TypeError, ValueError) as err:
            raise bad_request({"fault": [str(err)]}) from None
        for fault in faults:
            self.faults.add(fault)
        return Answer(data=self.faults.as_json())

    def _clear_faults(self, request: Request) -> Answer:
        self.faults.clear()
        return Answer(data=self.faults.as_json())

    def _set_latency(self, request: Request) -> Answer:
        body = _json_body(request)
        ms, route = (body.get("ms"), body.get("route", "all")) if isinstance(body, dict) else (None, None)
        try:
            route, ms = parse_latency_spec(f"{route}={ms}")
        except ValueError as err:
            raise bad_request({"latency": [str(err)]}) from None
        self.faults.set_latency(route, ms)
        return Answer(data=self.faults.as_json())

    def _limits(self) -> Answer:
        return Answer(data={"send": self.emulator.send_limits, "verify": self.emulator.verify_limit})

    def _get_limits(self, request: Request) -> Answer:
        return self._limits()

    def _set_limits(self, request: Request) -> Answer:
        body = _json_body(request)
        reader = validation.FieldReader(body)
        send, verify = reader.get("send", bool), reader.get("verify", bool)
        reader.done()
        if send is not None:
            self.emulator.send_limits = send
        if verify is not None:
            self.emulator.verify_limit = verify
        return self._limits()

    def _set_unreachable(self, request: Request) -> Answer:
        body = _json_body(request)
        numbers = body.get("numbers") if isinstance(body, dict) else None
        digits = (
            [validation.phone_digits(n) if isinstance(n, str) else None for n in numbers]
            if isinstance(numbers, list)
            else [None]
        )
        if None in digits:
            raise bad_request({"numbers": ["must be a list of phone numbers"]})
        self.emulator.unreachable = {d for d in digits if d}
        return Answer(data={"numbers": sorted(self.emulator.unreachable)})

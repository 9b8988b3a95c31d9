"""Validation of request bodies: JSON in, typed values out, or a 400.

Each function reads one documented request model (§3) and collects every
problem into ``validationErrors`` keyed by field name, so one answer lists all
of them. Unknown fields are ignored, as SDKs send extra ones (``trackDelivery``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from otp.emulator.errors import ValidationErrors, bad_request
from otp.emulator.formats import ONE_DAY, parse_duration, parse_limit
from otp.providers.infobip_spec import LANGUAGES, PIN_PLACEHOLDER

PIN_TYPES = ("NUMERIC", "ALPHA", "HEX", "ALPHANUMERIC")
# The app's own PIN_LENGTH default; Infobip documents none for SMS/voice.
DEFAULT_PIN_LENGTH = 6
MAX_PIN_LENGTH = 20
_PHONE = re.compile(r"\+?(\d{6,15})")

# Field -> (parser, maximum window) for the configuration's time strings.
_TIME_FIELDS = {
    "pinTimeToLive": (parse_duration, None),
    "verifyPinLimit": (parse_limit, ONE_DAY),
    "sendPinPerApplicationLimit": (parse_limit, None),
    "sendPinPerPhoneNumberLimit": (parse_limit, None),
}
_TYPES: dict[type, str] = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", dict: "an object"}


class FieldReader:
    """Reads typed fields out of one JSON object, collecting every error."""

    def __init__(self, body: object, prefix: str = "") -> None:
        self.prefix = prefix
        self.errors: ValidationErrors = {}
        self.body: dict[str, Any] = body if isinstance(body, dict) else {}
        if not isinstance(body, dict):
            self.add(prefix.rstrip(".") or "body", "must be a JSON object")

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(self.prefix + name, []).append(message)

    def has(self, name: str) -> bool:
        return self.body.get(name) is not None

    def get(self, name: str, kind: type, *, required: bool = False) -> Any:
        """The field if it has type ``kind``; ``None`` (and an error) otherwise."""
        value = self.body.get(name)
        if value is None:
            if required:
                self.add(name, "must not be null")
            return None
        # bool is an int in Python but not in JSON; an int is a fine float.
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            self.add(name, f"must be {_TYPES[kind]}")
            return None
        if kind is str and required and not value.strip():
            self.add(name, "must not be blank")
            return None
        return value

    def done(self) -> None:
        if self.errors:
            raise bad_request(self.errors)


def configuration(reader: FieldReader) -> dict[str, Any]:
    """Parsed ``ApplicationConfiguration`` fields present in the reader's object."""
    parsed: dict[str, Any] = {}
    attempts = reader.get("pinAttempts", int)
    if attempts is not None:
        if attempts < 1:
            reader.add("pinAttempts", "must be at least 1")
        else:
            parsed["pinAttempts"] = attempts
    multiple = reader.get("allowMultiplePinVerifications", bool)
    if multiple is not None:
        parsed["allowMultiplePinVerifications"] = multiple
    for name, (parse, maximum) in _TIME_FIELDS.items():
        if not reader.has(name):
            continue
        try:
            parsed[name] = parse(reader.body[name], **({"maximum": maximum} if maximum else {}))
        except ValueError as err:
            reader.add(name, str(err))
    return parsed


def application_request(body: object) -> tuple[str, bool | None, dict[str, Any]]:
    """``ApplicationRequest`` (POST and PUT): name, enabled, configuration fields."""
    reader = FieldReader(body)
    name = reader.get("name", str, required=True)
    enabled = reader.get("enabled", bool)
    config: dict[str, Any] = {}
    if reader.has("configuration"):
        nested = FieldReader(reader.body["configuration"], "configuration.")
        config = configuration(nested)
        reader.errors.update(nested.errors)
    reader.done()
    return name, enabled, config


def template_request(body: object, *, partial: bool) -> dict[str, Any]:
    """SMS/voice template fields; ``partial`` for PUT, where all are optional."""
    reader = FieldReader(body)
    fields: dict[str, Any] = {}
    text = reader.get("messageText", str, required=not partial)
    if text is not None:
        if PIN_PLACEHOLDER not in text:
            reader.add("messageText", f"must contain {PIN_PLACEHOLDER}")
        fields["messageText"] = text
    pin_type = reader.get("pinType", str, required=not partial)
    if pin_type is not None:
        if pin_type not in PIN_TYPES:
            reader.add("pinType", f"must be one of {', '.join(PIN_TYPES)}")
        fields["pinType"] = pin_type
    length = reader.get("pinLength", int)
    if length is not None:
        if not 1 <= length <= MAX_PIN_LENGTH:
            reader.add("pinLength", f"must be between 1 and {MAX_PIN_LENGTH}")
        fields["pinLength"] = length
    language = reader.get("language", str)
    if language is not None:
        if language not in LANGUAGES:
            reader.add("language", "is not a supported language")
        fields["language"] = language
    rate = reader.get("speechRate", float)
    if rate is not None:
        if not 0.5 <= rate <= 2:
            reader.add("speechRate", "must be between 0.5 and 2")
        fields["speechRate"] = rate
    for name in ("senderId", "voiceName", "repeatDTMF"):
        value = reader.get(name, str)
        if value is not None:
            fields[name] = value
    regional = reader.get("regional", dict)
    if regional is not None:
        fields["regional"] = regional
    reader.done()
    return fields


@dataclass(frozen=True)
class SendRequest:
    """A valid ``StartAuthenticationRequest``."""

    application_id: str
    message_id: str
    to: str
    sender: str | None = None
    placeholders: dict[str, str] = field(default_factory=dict)
    track_delivery: bool = False


def _placeholders(reader: FieldReader) -> dict[str, str]:
    values = reader.get("placeholders", dict) or {}
    if any(not isinstance(v, str) for v in values.values()):
        reader.add("placeholders", "values must be strings")
    if "pin" in values:
        reader.add("placeholders", "must not set pin")
    return values


def send_request(body: object) -> SendRequest:
    """``StartAuthenticationRequest``; ``to`` is returned without its ``+``."""
    reader = FieldReader(body)
    app_id = reader.get("applicationId", str, required=True)
    msg_id = reader.get("messageId", str, required=True)
    to = reader.get("to", str, required=True)
    match = _PHONE.fullmatch(to) if to is not None else None
    if to is not None and match is None:
        reader.add("to", "must be a phone number in international format (6 to 15 digits)")
    sender = reader.get("from", str)
    placeholders = _placeholders(reader)
    track = reader.get("trackDelivery", bool)
    reader.done()
    assert app_id is not None and msg_id is not None and match is not None
    return SendRequest(app_id, msg_id, match[1], sender, placeholders, bool(track))


def resend_request(body: object) -> dict[str, str]:
    """``ResendPinRequest`` (the body is optional): its placeholders."""
    reader = FieldReader({} if body is None else body)
    placeholders = _placeholders(reader)
    reader.get("trackDelivery", bool)
    reader.done()
    return placeholders


def verify_request(body: object) -> str:
    """``VerifyPinRequest``: the PIN."""
    reader = FieldReader(body)
    pin = reader.get("pin", str, required=True)
    reader.done()
    assert pin is not None
    return pin


def phone_digits(value: str) -> str | None:
    """``"+14155552671"`` or ``"14155552671"`` -> digits; ``None`` if not a number."""
    match = _PHONE.fullmatch(value.strip())
    return match[1] if match else None

"""Set up Infobip's 2FA application and message templates from the app's own policy.

The local ``OTP`` settings are the source of truth: Infobip may be as strict
as they are or stricter, never looser. :func:`desired_configuration` turns
them (and any overrides) into the exact bodies Infobip gets,
:func:`provision` creates or updates only what differs, :func:`check_compliance`
lists where the live settings are looser, and :func:`write_env` stores the
IDs in a ``.env`` file.

One template serves SMS and calls, unless ``OTP["WEBOTP_DOMAIN"]`` is set (or
a ``voice_message_id`` configured): the SMS template then ends with the
origin line ``@host #{{pin}}`` (:mod:`otp.providers.webotp`), and calls get a template
of their own without it.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from typing import Any

from otp.conf import otp_settings
from otp.providers import webotp
from otp.providers.infobip import InfobipProvider
from otp.providers.infobip_management import InfobipManagementClient, NotFound
from otp.providers.infobip_spec import LANGUAGES, PIN_PLACEHOLDER

DEFAULT_NAME = "django-otp"
DEFAULT_MESSAGE_TEXT = webotp.DEFAULT_MESSAGE_TEXT
# Infobip's default, 1/3s per number, turns a quick retype after a typo into a
# 429; the app's own per-PIN, per-phone and per-IP limits bound guessing.
DEFAULT_VERIFY_PIN_LIMIT = "10/1m"
DEFAULT_SEND_PIN_PER_APPLICATION_LIMIT = "10000/1d"
DEFAULT_SEND_PIN_PER_PHONE_NUMBER_LIMIT = "5/1d"
DEFAULT_LANGUAGE = "en"
#: What Infobip applies when a field is left out; an answer without a field means this.
INFOBIP_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "pinAttempts": 10,
    "allowMultiplePinVerifications": True,
    "pinTimeToLive": "15m",
    "verifyPinLimit": "1/3s",
    "sendPinPerApplicationLimit": "10000/1d",
    "sendPinPerPhoneNumberLimit": "3/1d",
    "language": "en",
}
ENV_APP_ID = "INFOBIP_2FA_APP_ID"
ENV_MSG_ID = "INFOBIP_2FA_MSG_ID"
ENV_VOICE_MSG_ID = "INFOBIP_2FA_VOICE_MSG_ID"

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DAY_MS = _UNIT_MS["d"]
_YEAR_MS = 365 * _DAY_MS
# "ms" before "m": the alternation is tried left to right.
_DURATION = re.compile(r"(\d+)?(ms|s|m|h|d)")
_LIMIT = re.compile(r"(\d+)/(\d+)?(ms|s|m|h|d)")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
# Infobip IDs are hex or digits; anything else must not reach a .env line.
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_APP_FIELDS = (
    "pinAttempts",
    "allowMultiplePinVerifications",
    "pinTimeToLive",
    "verifyPinLimit",
    "sendPinPerApplicationLimit",
    "sendPinPerPhoneNumberLimit",
)


class ProvisioningError(Exception):
    """A refused override, an ambiguous account, or an unusable answer."""


# -- Infobip's duration and limit strings (reference §3.1) ----------------------


def parse_duration(text: Any) -> int:
    """``"5m"`` -> 300000 (milliseconds). ``ValueError`` for anything else."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 5m or 300s")
    return int(match[1] or 1) * _UNIT_MS[match[2]]


def parse_limit(text: Any) -> tuple[int, int]:
    """``"5/1d"`` -> ``(5, 86400000)``: requests per window in milliseconds."""
    match = _LIMIT.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a limit such as 5/1d or 1/3s")
    return int(match[1]), int(match[2] or 1) * _UNIT_MS[match[3]]


def render_duration(seconds: int) -> str:
    """300 -> ``"5m"``, 90 -> ``"90s"``: exact, so never longer than ``seconds``."""
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _same(name: str, live: Any, desired: Any) -> bool:
    """Compare one managed field as Infobip means it: ``"5m"`` equals ``"300s"``."""
    try:
        if name == "pinTimeToLive":
            return parse_duration(live) == parse_duration(desired)
        if name.endswith("Limit"):
            return parse_limit(live) == parse_limit(desired)
    except ValueError:
        return False
    return type(live) is type(desired) and live == desired


# -- what Infobip should hold -------------------------------------------------------


@dataclass(frozen=True)
class Desired:
    """The application request body and the template fields we manage.

    ``voice_template`` is None when calls read the SMS template.
    """

    application: dict[str, Any]
    template: dict[str, Any]
    voice_template: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.application["name"]


def _checked_duration(label: str, text: str, ceiling_ms: int, ceiling_label: str) -> str:
    try:
        value = parse_duration(text)
    except ValueError as err:
        raise ProvisioningError(f"{label}: {err}") from None
    if value == 0:
        raise ProvisioningError(f"{label} must be longer than zero")
    if value > ceiling_ms:
        raise ProvisioningError(f"{label} {text} is longer than {ceiling_label}; refused")
    return text


def _checked_limit(label: str, text: str, ceiling_ms: int) -> str:
    try:
        attempts, window = parse_limit(text)
    except ValueError as err:
        raise ProvisioningError(f"{label}: {err}") from None
    if attempts == 0 or window == 0:
        raise ProvisioningError(f"{label} {text} must allow at least one request in a non-empty window")
    if window > ceiling_ms:
        raise ProvisioningError(f"{label} {text} has a window longer than Infobip allows")
    return text


def _checked_placeholders(label: str, text: str) -> None:
    # The app sends no placeholder values: any other {{name}} would reach users verbatim.
    others = sorted({name for name in _PLACEHOLDER.findall(text) if name != "pin"})
    if others:
        raise ProvisioningError(f"the {label} may use only {PIN_PLACEHOLDER}, not {{{{{others[0]}}}}}")


def _checked_text(text: str, label: str = "message text") -> str:
    if PIN_PLACEHOLDER not in text:
        raise ProvisioningError(f"the {label} must contain {PIN_PLACEHOLDER}")
    _checked_placeholders(label, text)
    return text


def _checked_voice_text(text: str) -> str:
    _checked_text(text, "voice message text")
    lines = webotp.origin_lines(text)
    if lines:
        raise ProvisioningError(f"the voice message text must not hold an origin line ({lines[0]!r}): it is read out")
    return text


def _origin_bound_text(text: str | None, domain: str) -> str:
    """The SMS text for ``domain``: ``text`` (the human-readable part) and the origin line.

    ``text`` may also be given whole, already ending with the right line. It
    must not hold ``{{pin}}`` elsewhere: the origin line carries the one
    placeholder, as Infobip does not document whether a template may hold two.
    """
    line = webotp.origin_line(domain)
    if text is None:
        return webotp.origin_bound(webotp.DEFAULT_HEADLINE, domain)
    headline = text
    if webotp.last_line(text) == line:
        headline = text.rstrip("\r\n")[: -len(line)]
    conflicting = webotp.origin_lines(headline)
    if conflicting:
        raise ProvisioningError(
            f"the message text holds the origin line {conflicting[0]!r}, but OTP['WEBOTP_DOMAIN'] makes the last "
            f"line {line!r}: leave the line out and provisioning appends it"
        )
    if PIN_PLACEHOLDER in headline:
        raise ProvisioningError(
            f"with OTP['WEBOTP_DOMAIN'] set, the message text is the human-readable part and must not contain "
            f"{PIN_PLACEHOLDER}: provisioning appends the line {line!r}, which carries the one placeholder"
        )
    _checked_placeholders("message text", headline)
    if not headline.strip():
        raise ProvisioningError("the message text needs a human-readable line before the origin line")
    return webotp.origin_bound(headline, domain)


def desired_configuration(
    *,
    name: str = DEFAULT_NAME,
    pin_attempts: int | None = None,
    pin_ttl: str | None = None,
    verify_pin_limit: str | None = None,
    send_pin_per_application_limit: str | None = None,
    send_pin_per_phone_number_limit: str | None = None,
    message_text: str | None = None,
    voice_message_text: str | None = None,
    pin_length: int | None = None,
    sender_id: str | None = None,
    language: str | None = None,
    voice_name: str | None = None,
    speech_rate: float | None = None,
    repeat_dtmf: str | None = None,
    separate_voice: bool | None = None,
) -> Desired:
    """Derive Infobip's settings from ``OTP``; refuse overrides looser than it.

    ``separate_voice`` gives calls a template of their own (default: when
    ``OTP["WEBOTP_DOMAIN"]`` is set, which requires one).
    """
    max_attempts = otp_settings.MAX_VERIFY_ATTEMPTS
    ttl_seconds = otp_settings.CODE_TTL_SECONDS
    local_length = otp_settings.PIN_LENGTH
    domain = otp_settings.WEBOTP_DOMAIN
    if domain and (problem := webotp.host_problem(domain)):
        raise ProvisioningError(f"OTP['WEBOTP_DOMAIN'] = {domain!r} is not a bare host: {problem}")
    separate_voice = bool(domain) if separate_voice is None else separate_voice or bool(domain)
    if voice_message_text is not None and not separate_voice:
        raise ProvisioningError(
            "a voice message text needs a voice template of its own: set OTP['WEBOTP_DOMAIN'] or "
            "OTP['PROVIDER_OPTIONS']['voice_message_id']"
        )
    name = (name or "").strip()
    if not name:
        raise ProvisioningError("the application name must not be empty")
    if pin_attempts is not None and not 1 <= pin_attempts <= max_attempts:
        raise ProvisioningError(
            f"pinAttempts {pin_attempts} refused: it must be from 1 to the local MAX_VERIFY_ATTEMPTS ({max_attempts})"
        )
    if pin_length is not None and pin_length != local_length:
        raise ProvisioningError(f"pinLength {pin_length} refused: it must equal the local PIN_LENGTH ({local_length})")
    language = language or DEFAULT_LANGUAGE
    if language not in LANGUAGES:
        raise ProvisioningError(f"language {language!r} is not one of Infobip's: {', '.join(sorted(LANGUAGES))}")
    if sender_id is not None and (not sender_id.strip() or not sender_id.isprintable()):
        raise ProvisioningError("the sender ID must be printable and not empty")
    # Voice calls read the same template out (language, voice, pace, replay key).
    if speech_rate is not None and not 0.5 <= speech_rate <= 2:
        raise ProvisioningError(f"speechRate {speech_rate} refused: Infobip accepts 0.5 to 2")
    if repeat_dtmf is not None and not re.fullmatch(r"[0-9*#]{1,8}", repeat_dtmf):
        raise ProvisioningError(f"repeatDTMF {repeat_dtmf!r} refused: use keypad characters such as 1#")
    if voice_name is not None and not re.fullmatch(r"[A-Za-z][A-Za-z -]{0,39}", voice_name):
        raise ProvisioningError(f"voiceName {voice_name!r} refused: use a voice name such as Joanna")
    configuration = {
        "pinAttempts": max_attempts if pin_attempts is None else pin_attempts,
        # One successful verification ends a PIN, as it does locally.
        "allowMultiplePinVerifications": False,
        "pinTimeToLive": _checked_duration(
            "pinTimeToLive",
            pin_ttl or render_duration(ttl_seconds),
            ttl_seconds * 1000,
            f"the local CODE_TTL_SECONDS ({ttl_seconds}s)",
        ),
        "verifyPinLimit": _checked_limit("verifyPinLimit", verify_pin_limit or DEFAULT_VERIFY_PIN_LIMIT, _DAY_MS),
        "sendPinPerApplicationLimit": _checked_limit(
            "sendPinPerApplicationLimit",
            send_pin_per_application_limit or DEFAULT_SEND_PIN_PER_APPLICATION_LIMIT,
            _YEAR_MS,
        ),
        "sendPinPerPhoneNumberLimit": _checked_limit(
            "sendPinPerPhoneNumberLimit",
            send_pin_per_phone_number_limit or DEFAULT_SEND_PIN_PER_PHONE_NUMBER_LIMIT,
            _YEAR_MS,
        ),
    }
    if domain:
        sms_text = _origin_bound_text(message_text, domain)
    else:
        sms_text = _checked_text(message_text or DEFAULT_MESSAGE_TEXT)
    pin = {"pinType": "NUMERIC", "pinLength": local_length}
    sender = {} if sender_id is None else {"senderId": sender_id}
    voice = {"voiceName": voice_name, "speechRate": speech_rate, "repeatDTMF": repeat_dtmf}
    speech = {"language": language, **{key: value for key, value in voice.items() if value is not None}}
    application = {"name": name, "enabled": True, "configuration": configuration}
    if not separate_voice:
        return Desired(application, {"messageText": sms_text, **pin, **speech, **sender})
    # Without a domain the SMS text is a plain one, which calls may share.
    voice_text = voice_message_text or (DEFAULT_MESSAGE_TEXT if domain else sms_text)
    return Desired(
        application,
        {"messageText": sms_text, **pin, **sender},
        {"messageText": _checked_voice_text(voice_text), **pin, **speech, **sender},
    )


# -- comparing with what Infobip holds ------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One managed field: its live value (None when creating) and ours."""

    field: str
    current: Any
    desired: Any


@dataclass
class Step:
    """What happens to the application or a template."""

    kind: str  # "application", "template" (SMS, and calls without their own) or "voice"
    action: str  # "create", "update" or "none"
    ident: str | None = None
    changes: list[Change] = field(default_factory=list)


@dataclass
class Outcome:
    """The steps of one run; their ``ident`` is None only for a dry-run create."""

    application: Step
    template: Step
    voice: Step | None = None

    @property
    def steps(self) -> list[Step]:
        return [self.application, self.template, *([self.voice] if self.voice else [])]

    @property
    def changed(self) -> bool:
        return any(step.action != "none" for step in self.steps)


def _flatten_application(app: dict[str, Any]) -> dict[str, Any]:
    configuration = app.get("configuration")
    configuration = configuration if isinstance(configuration, dict) else {}
    flat = {"name": app.get("name"), "enabled": app.get("enabled", INFOBIP_DEFAULTS["enabled"])}
    for name in _APP_FIELDS:
        flat[name] = configuration.get(name, INFOBIP_DEFAULTS[name])
    return flat


def _diff(live: dict[str, Any] | None, desired: dict[str, Any]) -> list[Change]:
    if live is None:
        return [Change(name, None, value) for name, value in desired.items()]
    return [
        Change(name, live.get(name, INFOBIP_DEFAULTS.get(name)), value)
        for name, value in desired.items()
        if not _same(name, live.get(name, INFOBIP_DEFAULTS.get(name)), value)
    ]


def _ident(answer: dict[str, Any], key: str, what: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not _SAFE_ID.fullmatch(value):
        raise ProvisioningError(f"Infobip's {what} has no usable {key}")
    return value


def find_application(apps: list[dict[str, Any]], name: str, configured_id: str = "") -> dict[str, Any] | None:
    """The application called ``name``; the configured one if several share the name."""
    named = [app for app in apps if app.get("name") == name]
    if len(named) > 1:
        named = [app for app in named if configured_id and app.get("applicationId") == configured_id]
        if not named:
            raise ProvisioningError(
                f"several Infobip applications are named {name!r}; set application_id "
                "to the one to manage, or use another --name"
            )
    return named[0] if named else None


def find_template(
    messages: list[dict[str, Any]], text: str, configured_id: str = "", exclude: str | None = None
) -> dict[str, Any] | None:
    """The configured SMS/voice template, else one with our text, else None; never ``exclude``."""
    sms = [m for m in messages if m.get("emailTemplateId") is None and not (exclude and m.get("messageId") == exclude)]
    for message in sms:
        if configured_id and message.get("messageId") == configured_id:
            return message
    return next((m for m in sms if m.get("messageText") == text), None)


def _provision_template(
    client: InfobipManagementClient,
    kind: str,
    app_id: str,
    template: dict[str, Any] | None,
    wanted: dict[str, Any],
    *,
    dry_run: bool,
) -> Step:
    if template is None:
        step = Step(kind, "create", None, _diff(None, wanted))
        if not dry_run:
            created = client.create_message(app_id, wanted)
            step.ident = _ident(created, "messageId", f"new {kind}")
        return step
    msg_id = _ident(template, "messageId", kind)
    changes = _diff(template, wanted)
    if changes and not dry_run:
        client.update_message(app_id, msg_id, wanted)
    return Step(kind, "update" if changes else "none", msg_id, changes)


def provision(
    client: InfobipManagementClient,
    desired: Desired,
    *,
    application_id: str = "",
    message_id: str = "",
    voice_message_id: str = "",
    dry_run: bool = False,
) -> Outcome:
    """Create or update the application and its templates; with ``dry_run`` only GETs."""
    app = find_application(client.list_applications(), desired.name, application_id)
    wanted_app = _flatten_application(desired.application)
    if app is None:
        app_step = Step("application", "create", None, _diff(None, wanted_app))
        if not dry_run:
            created = client.create_application(desired.application)
            app_step.ident = _ident(created, "applicationId", "new application")
        messages: list[dict[str, Any]] = []  # a new application has no templates
    else:
        app_id = _ident(app, "applicationId", "application")
        changes = _diff(_flatten_application(app), wanted_app)
        app_step = Step("application", "update" if changes else "none", app_id, changes)
        if changes and not dry_run:
            client.update_application(app_id, desired.application)
        messages = client.list_messages(app_id)

    # A configured message ID only names a template of the configured application.
    app_id = app_step.ident or ""  # empty only in a dry run that would create the application
    configured_app = bool(app_id) and app_id == application_id
    known_voice_id = voice_message_id if configured_app and desired.voice_template is not None else ""
    template = find_template(
        messages,
        desired.template["messageText"],
        message_id if configured_app else "",
        # SMS and voice texts are the same without a domain: the voice template is not the SMS one.
        exclude=known_voice_id if known_voice_id != message_id else None,
    )
    template_step = _provision_template(client, "template", app_id, template, desired.template, dry_run=dry_run)
    if desired.voice_template is None:
        return Outcome(app_step, template_step)
    # Never the SMS template, even when both IDs name it: calls must not read its origin line.
    voice = find_template(messages, desired.voice_template["messageText"], known_voice_id, exclude=template_step.ident)
    voice_step = _provision_template(client, "voice", app_id, voice, desired.voice_template, dry_run=dry_run)
    return Outcome(app_step, template_step, voice_step)


# -- compliance --------------------------------------------------------------------


def _looser_application(app: dict[str, Any]) -> list[str]:
    flat = _flatten_application(app)
    ttl_seconds = otp_settings.CODE_TTL_SECONDS
    max_attempts = otp_settings.MAX_VERIFY_ATTEMPTS
    problems = []
    ttl = flat["pinTimeToLive"]
    try:
        if parse_duration(ttl) > ttl_seconds * 1000:
            problems.append(f"pinTimeToLive is {ttl}, longer than the local CODE_TTL_SECONDS ({ttl_seconds}s)")
    except ValueError:
        problems.append(f"pinTimeToLive {ttl!r} cannot be read")
    attempts = flat["pinAttempts"]
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts > max_attempts:
        problems.append(f"pinAttempts is {attempts}, more than the local MAX_VERIFY_ATTEMPTS ({max_attempts})")
    if flat["allowMultiplePinVerifications"] is not False:
        problems.append("allowMultiplePinVerifications is true: a verified PIN could be verified again")
    return problems


def _verify_limit_differs(app: dict[str, Any], desired: Desired) -> list[str]:
    """``verifyPinLimit`` must be what provisioning sets, neither way off.

    Stricter (Infobip's default 1/3s) answers 429 to a user who retypes a
    code; looser lets more guesses at one number reach Infobip.
    """
    live = _flatten_application(app)["verifyPinLimit"]
    wanted = desired.application["configuration"]["verifyPinLimit"]
    if _same("verifyPinLimit", live, wanted):
        return []
    return [
        f"verifyPinLimit is {live}, provisioning sets {wanted}: stricter answers 429 to users who retype a code, "
        "looser lets more guesses at one number through"
    ]


def _looser_template(template: dict[str, Any], label: str = "") -> list[str]:
    pin_length = otp_settings.PIN_LENGTH
    problems = []
    if template.get("pinLength") != pin_length:
        problems.append(f"{label}pinLength is {template.get('pinLength')}, the local PIN_LENGTH is {pin_length}")
    if template.get("pinType") != "NUMERIC":
        problems.append(f"{label}pinType is {template.get('pinType')}, not NUMERIC")
    text = template.get("messageText")
    if not isinstance(text, str) or PIN_PLACEHOLDER not in text:
        problems.append(f"{label}messageText has no {PIN_PLACEHOLDER} placeholder")
    return problems


def _origin_line_problems(template: dict[str, Any]) -> list[str]:
    """The SMS template must end with the origin line while ``WEBOTP_DOMAIN`` is set."""
    domain = otp_settings.WEBOTP_DOMAIN
    text = template.get("messageText")
    if not domain or not isinstance(text, str):
        return []
    line = webotp.origin_line(domain)
    if webotp.last_line(text) == line:
        return []
    return [f"messageText does not end with the line {line}: browsers will not offer the code on {domain}"]


def _voice_template_problems(template: dict[str, Any]) -> list[str]:
    problems = _looser_template(template, "voice template: ")
    text = template.get("messageText")
    lines = webotp.origin_lines(text) if isinstance(text, str) else []
    if lines:
        problems.append(f"voice template: messageText holds the origin line {lines[0]}, which calls read out")
    return problems


def check_compliance(
    client: InfobipManagementClient,
    desired: Desired,
    *,
    application_id: str = "",
    message_id: str = "",
    voice_message_id: str = "",
) -> list[str]:
    """Where the live application and templates are looser than the local policy, or
    their ``verifyPinLimit`` differs from what provisioning sets (GETs only).

    The configured IDs are what the site sends with, so they are checked when
    set; otherwise the application is found by name and the templates by text.
    While ``WEBOTP_DOMAIN`` is set the SMS template must end with its origin
    line; a voice template must never hold one.
    """
    app: dict[str, Any] | None
    template: dict[str, Any] | None
    if application_id:
        try:
            app = client.get_application(application_id)
        except NotFound:
            return [f"the configured application {application_id} does not exist"]
    else:
        app = find_application(client.list_applications(), desired.name)
        if app is None:
            return [f"no Infobip application is named {desired.name!r}"]
        application_id = _ident(app, "applicationId", "application")
    assert app is not None
    problems = _looser_application(app) + _verify_limit_differs(app, desired)
    messages: list[dict[str, Any]] | None = None

    def live(kind: str, msg_id: str, text: str, exclude: str | None = None) -> dict[str, Any] | None:
        nonlocal messages
        if msg_id:
            try:
                return client.get_message(application_id, msg_id)
            except NotFound:
                problems.append(f"the configured {kind} {msg_id} does not exist in application {application_id}")
                return None
        if messages is None:
            messages = client.list_messages(application_id)
        found = find_template(messages, text, exclude=exclude)
        if found is None:
            problems.append(f"application {application_id} has no {kind} with the expected text")
        return found

    template = live("template" if message_id else "SMS template", message_id, desired.template["messageText"])
    if template is not None:
        problems += _looser_template(template) + _origin_line_problems(template)
    if desired.voice_template is not None:
        sms_id = template.get("messageId") if template is not None else None
        voice = live("voice template", voice_message_id, desired.voice_template["messageText"], sms_id)
        if voice is not None:
            problems += _voice_template_problems(voice)
    return problems


# -- after provisioning ------------------------------------------------------------


def send_test_pin(provider_options: dict[str, Any], application_id: str, message_id: str, phone: str) -> bool:
    """Send one PIN through the provisioned IDs exactly as the site will; True when delivered."""
    provider = InfobipProvider(**{**provider_options, "application_id": application_id, "message_id": message_id})
    return provider.send(phone).delivered


def _env_line_pattern(key: str) -> re.Pattern[bytes]:
    return re.compile(rb"(\s*(?:export\s+)?)" + re.escape(key.encode()) + rb"\s*=.*")


def update_env_text(data: bytes, values: dict[str, str]) -> bytes:
    """Replace the ``KEY=`` lines of ``values`` in ``data``, appending missing keys; all else byte-for-byte."""
    lines = data.splitlines(keepends=True)
    eol = next((line[len(line.rstrip(b"\r\n")) :] for line in lines if line.endswith(b"\n")), b"\n")
    patterns = {key: _env_line_pattern(key) for key in values}
    seen = set()
    for index, line in enumerate(lines):
        body = line.rstrip(b"\r\n")
        for key, value in values.items():
            match = patterns[key].fullmatch(body)
            if match:
                lines[index] = match[1] + f"{key}={value}".encode() + line[len(body) :]
                seen.add(key)
    missing = [key for key in values if key not in seen]
    if missing and lines and not lines[-1].endswith((b"\n", b"\r")):
        lines[-1] += eol
    lines += [f"{key}={values[key]}".encode() + eol for key in missing]
    return b"".join(lines)


def write_env(path: str | os.PathLike[str], values: dict[str, str]) -> bool:
    """Write ``values`` into the .env file at ``path`` atomically; False when nothing changed.

    A temporary file in the same directory is renamed over the old one, so a
    reader sees the old file or the new one, never half of it. The file keeps
    its permissions; a new one is readable by its owner only (it holds secrets).
    """
    for key, value in values.items():
        if not _SAFE_ID.fullmatch(value):
            raise ProvisioningError(f"refusing to write {key}: {value!r} is not a plain ID")
    target = os.path.realpath(path)  # write through a symlink, keep the link
    try:
        with open(target, "rb") as handle:
            old = handle.read()
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        old, mode = b"", 0o600
    new = update_env_text(old, values)
    if new == old:
        return False
    directory, base = os.path.split(target)
    fd, temp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(new)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return True

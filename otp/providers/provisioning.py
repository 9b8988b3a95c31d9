"""Set up Infobip's 2FA application and SMS template from the app's own policy.

The local ``OTP`` settings are the source of truth: Infobip may be as strict
as they are or stricter, never looser. :func:`desired_configuration` turns
them (and any overrides) into the exact bodies Infobip gets,
:func:`provision` creates or updates only what differs, :func:`check_compliance`
lists where the live settings are looser, and :func:`write_env` stores the
two IDs in a ``.env`` file.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from typing import Any

from otp.conf import otp_settings
from otp.providers.infobip import InfobipProvider
from otp.providers.infobip_management import InfobipManagementClient, NotFound
from otp.providers.infobip_spec import LANGUAGES, PIN_PLACEHOLDER

DEFAULT_NAME = "django-otp"
DEFAULT_MESSAGE_TEXT = "Your verification code is {{pin}}"
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
    """The application request body and the template fields we manage."""

    application: dict[str, Any]
    template: dict[str, Any]

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


def _checked_text(text: str) -> str:
    names = _PLACEHOLDER.findall(text)
    if PIN_PLACEHOLDER not in text:
        raise ProvisioningError(f"the message text must contain {PIN_PLACEHOLDER}")
    # The app sends no placeholder values: any other {{name}} would reach users verbatim.
    others = sorted({name for name in names if name != "pin"})
    if others:
        raise ProvisioningError(f"the message text may use only {PIN_PLACEHOLDER}, not {{{{{others[0]}}}}}")
    return text


def desired_configuration(
    *,
    name: str = DEFAULT_NAME,
    pin_attempts: int | None = None,
    pin_ttl: str | None = None,
    verify_pin_limit: str | None = None,
    send_pin_per_application_limit: str | None = None,
    send_pin_per_phone_number_limit: str | None = None,
    message_text: str | None = None,
    pin_length: int | None = None,
    sender_id: str | None = None,
    language: str | None = None,
    voice_name: str | None = None,
    speech_rate: float | None = None,
    repeat_dtmf: str | None = None,
) -> Desired:
    """Derive Infobip's settings from ``OTP``; refuse overrides looser than it."""
    max_attempts = otp_settings.MAX_VERIFY_ATTEMPTS
    ttl_seconds = otp_settings.CODE_TTL_SECONDS
    local_length = otp_settings.PIN_LENGTH
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
    template: dict[str, Any] = {
        "messageText": _checked_text(message_text or DEFAULT_MESSAGE_TEXT),
        "pinType": "NUMERIC",
        "pinLength": local_length,
        "language": language,
    }
    if sender_id is not None:
        template["senderId"] = sender_id
    voice = {"voiceName": voice_name, "speechRate": speech_rate, "repeatDTMF": repeat_dtmf}
    template.update({key: value for key, value in voice.items() if value is not None})
    return Desired(application={"name": name, "enabled": True, "configuration": configuration}, template=template)


# -- comparing with what Infobip holds ------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One managed field: its live value (None when creating) and ours."""

    field: str
    current: Any
    desired: Any


@dataclass
class Step:
    """What happens to the application or the template."""

    kind: str  # "application" or "template"
    action: str  # "create", "update" or "none"
    ident: str | None = None
    changes: list[Change] = field(default_factory=list)


@dataclass
class Outcome:
    """The two steps of one run; their ``ident`` is None only for a dry-run create."""

    application: Step
    template: Step

    @property
    def changed(self) -> bool:
        return self.application.action != "none" or self.template.action != "none"


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


def find_template(messages: list[dict[str, Any]], text: str, configured_id: str = "") -> dict[str, Any] | None:
    """The configured SMS template, else one with our text, else None."""
    sms = [m for m in messages if m.get("emailTemplateId") is None]
    for message in sms:
        if configured_id and message.get("messageId") == configured_id:
            return message
    return next((m for m in sms if m.get("messageText") == text), None)


def provision(
    client: InfobipManagementClient,
    desired: Desired,
    *,
    application_id: str = "",
    message_id: str = "",
    dry_run: bool = False,
) -> Outcome:
    """Create or update the application and its template; with ``dry_run`` only GETs."""
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
    known_msg_id = message_id if app_id and app_id == application_id else ""
    template = find_template(messages, desired.template["messageText"], known_msg_id)
    if template is None:
        template_step = Step("template", "create", None, _diff(None, desired.template))
        if not dry_run:
            created = client.create_message(app_id, desired.template)
            template_step.ident = _ident(created, "messageId", "new template")
    else:
        msg_id = _ident(template, "messageId", "template")
        changes = _diff(template, desired.template)
        template_step = Step("template", "update" if changes else "none", msg_id, changes)
        if changes and not dry_run:
            client.update_message(app_id, msg_id, desired.template)
    return Outcome(app_step, template_step)


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


def _looser_template(template: dict[str, Any]) -> list[str]:
    pin_length = otp_settings.PIN_LENGTH
    problems = []
    if template.get("pinLength") != pin_length:
        problems.append(f"pinLength is {template.get('pinLength')}, the local PIN_LENGTH is {pin_length}")
    if template.get("pinType") != "NUMERIC":
        problems.append(f"pinType is {template.get('pinType')}, not NUMERIC")
    text = template.get("messageText")
    if not isinstance(text, str) or PIN_PLACEHOLDER not in text:
        problems.append(f"messageText has no {PIN_PLACEHOLDER} placeholder")
    return problems


def check_compliance(
    client: InfobipManagementClient,
    desired: Desired,
    *,
    application_id: str = "",
    message_id: str = "",
) -> list[str]:
    """Where the live application and template are looser than the local policy, or
    their ``verifyPinLimit`` differs from what provisioning sets (GETs only).

    The configured IDs are what the site sends with, so they are checked when
    set; otherwise the application is found by name and the template by text.
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
    if message_id:
        try:
            template = client.get_message(application_id, message_id)
        except NotFound:
            return [*problems, f"the configured template {message_id} does not exist in application {application_id}"]
    else:
        template = find_template(client.list_messages(application_id), desired.template["messageText"])
    if template is None:
        return [*problems, f"application {application_id} has no SMS template with the expected text"]
    return problems + _looser_template(template)


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

"""Infobip 2FA over HTTP with ``requests``.

Transport only: it turns Infobip's answers into :class:`SendResult`,
:class:`VerifyResult` and typed exceptions. See Infobip's API reference for
``POST /2fa/2/pin`` and ``POST /2fa/2/pin/{pinId}/verify``. :func:`build_session`
and :func:`request_json` are shared with the management client, so every call
to Infobip is authenticated, timed and mapped the same way.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests
import urllib3
from django.core.checks import CheckMessage, Error, Warning
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.util.retry import Retry

from otp import __version__
from otp.conf import otp_settings
from otp.exceptions import (
    PinNotFound,
    ProviderError,
    ProviderMisconfigured,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from otp.net import is_loopback
from otp.providers.base import SMS, VOICE, BaseProvider, SendResult, VerifyResult
from otp.redaction import install_transport_log_filter, redact_url_credentials

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 10.0
#: An answer larger than this is refused: Infobip's are a few hundred bytes.
MAX_RESPONSE_BYTES = 1024 * 1024
# Statuses in which Infobip says no SMS went out (the docs also spell it NC_NOT_REACHABLE).
_UNREACHABLE_NC = {"NC_DESTINATION_NOT_REACHABLE", "NC_NOT_REACHABLE"}
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


class InvalidBaseUrl(ValueError):
    """``base_url`` is empty, malformed, or plain http to a non-loopback host."""


def normalize_base_url(raw: str) -> str:
    """``xyz.api.infobip.com`` -> ``https://xyz.api.infobip.com``.

    A full URL is kept; plain ``http`` is accepted only for loopback hosts (a
    local emulator), as Infobip's own SDKs do.
    """
    raw = (raw or "").strip().rstrip("/")
    if not raw:
        raise InvalidBaseUrl("the Infobip base URL is empty")
    if "://" not in raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidBaseUrl(f"{raw!r} is not an http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidBaseUrl(f"{raw!r} must be a bare host or a URL without query or credentials")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InvalidBaseUrl(f"{raw!r} uses plain http; only loopback hosts may (use https)")
    return raw


def api_key_problem(api_key: str) -> str | None:
    """Why ``api_key`` cannot go into an ``Authorization`` header, or None.

    A key read from a secret file often ends with a newline; HTTP libraries
    refuse such a header with an error that quotes it.
    """
    if not api_key.isascii() or not api_key.isprintable() or any(ch.isspace() for ch in api_key):
        return "it holds whitespace, control or non-ASCII characters"
    return None


def _retry_policy() -> Retry:
    # A connection that was never made cannot have reached Infobip, so one retry
    # is safe. Nothing is retried once sent: a repeated send is a second charged
    # SMS and a second valid PIN. POST is not among urllib3's retryable methods,
    # and read, status and redirect retries are off for every method.
    return Retry(
        total=1,
        connect=1,
        read=0,
        status=0,
        other=0,
        redirect=0,
        raise_on_status=False,
        raise_on_redirect=False,
    )


#: Connections kept to Infobip when the provider calls are not bounded.
DEFAULT_POOL_MAXSIZE = 32


def environment_proxies(url: str) -> dict[str, str]:
    """The proxies the environment names for ``url`` (``HTTPS_PROXY``, ``ALL_PROXY``; ``NO_PROXY`` honoured)."""
    return dict(requests.utils.get_environ_proxies(url))


def environment_ca_bundle() -> str | bool:
    """The CA bundle ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` names, else requests' own (certifi)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def build_session(
    api_key: str,
    pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
    *,
    base_url: str = "",
    proxies: dict[str, str] | None = None,
) -> requests.Session:
    """A session that sends ``Authorization: App <key>`` and JSON, and never retries a sent request.

    ``proxies`` (as requests takes them) win over the environment's proxy
    variables for ``base_url``; the CA bundle variables are honoured too.
    """
    session = requests.Session()
    # The environment is read here, explicitly: requests' own reading would
    # also apply ~/.netrc, whose "default" entry replaces Authorization: App.
    session.trust_env = False
    session.proxies = dict(proxies) if proxies is not None else environment_proxies(base_url) if base_url else {}
    session.verify = environment_ca_bundle()
    session.headers.update(
        {
            "Authorization": f"App {api_key}",
            "Accept": "application/json",
            "User-Agent": f"django-otp-infobip/{__version__}",
            # Answers are a few hundred bytes: nothing to gain from compression.
            "Accept-Encoding": "identity",
        }
    )
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=_retry_policy())
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def request_json(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: tuple[float, float],
    operation: str,
    body: dict[str, Any] | None = None,
    not_found: type[ProviderError] = ProviderRejected,
    expect: type = dict,
) -> Any:
    """Call Infobip and return its JSON answer (of type ``expect``), or raise a typed error.

    Redirects are never followed: the ``Authorization`` header must not travel elsewhere.
    """
    try:
        with session.request(method, url, json=body, timeout=timeout, allow_redirects=False, stream=True) as response:
            content = _read_capped(response, operation)
    except requests.exceptions.InvalidHeader:
        # requests quotes the refused value, the API key: raised without it.
        raise ProviderMisconfigured(
            f"Infobip {operation} not sent: the API key holds whitespace or control characters", nothing_sent=True
        ) from None
    except requests.RequestException as err:
        unsent = _never_sent(err)
        if _is_timeout(err):
            kind = type(err).__name__ if isinstance(err, requests.Timeout) else "ReadTimeout"
            raise ProviderUnavailable(f"Infobip {operation} timed out ({kind})", nothing_sent=unsent) from err
        raise ProviderUnavailable(f"Infobip {operation} failed: {type(err).__name__}", nothing_sent=unsent) from err
    except ValueError:
        # http.client refuses a header value it cannot encode, quoting it.
        raise ProviderMisconfigured(
            f"Infobip {operation} not sent: a request header is invalid", nothing_sent=True
        ) from None
    return _parse(
        response.status_code, response.headers, content, operation=operation, not_found=not_found, expect=expect
    )


def _read_capped(response: requests.Response, operation: str) -> bytes:
    """The whole body, refused past :data:`MAX_RESPONSE_BYTES` (decoded, if the server compressed it)."""
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ProviderUnavailable(f"Infobip {operation} answer is larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_timeout(err: requests.RequestException) -> bool:
    """True for connect and read timeouts, including those urllib3 wraps.

    With retries configured, urllib3 reports a read timeout of a retryable
    method (a GET) as MaxRetryError, which requests raises as a
    ConnectionError; the timeout is its ``reason``.
    """
    if isinstance(err, requests.Timeout):
        return True
    reason = getattr(err.args[0], "reason", err.args[0]) if err.args else None
    # urllib3 files a refused connection (NewConnectionError) under its timeouts.
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def _never_sent(err: requests.RequestException) -> bool:
    """True when the request cannot have reached Infobip: no connection, or no TLS session, was made."""
    if isinstance(err, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    reason = getattr(err.args[0], "reason", None) if err.args else None
    if isinstance(reason, urllib3.exceptions.ProxyError):
        reason = reason.original_error
    return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))


def _error_envelope(content: bytes) -> dict[str, Any] | None:
    """Infobip's error object (``requestError.serviceException`` or ``policyException``), or None.

    Only Infobip answers with it: a 502 or 504 from a proxy on the way does
    not, and may come after Infobip took the request.
    """
    try:
        envelope = json.loads(content)["requestError"]
        exc = envelope.get("serviceException") or envelope.get("policyException")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return exc if isinstance(exc, dict) else None


def _parse(
    status: int,
    headers: CaseInsensitiveDict[str],
    content: bytes,
    *,
    operation: str,
    not_found: type[ProviderError],
    expect: type,
) -> Any:
    if 200 <= status < 300:
        try:
            data = json.loads(content)
        except ValueError as err:
            raise ProviderUnavailable(
                f"Infobip {operation} answered {status} with a non-JSON body", status_code=status
            ) from err
        if not isinstance(data, expect):
            kind = "object" if expect is dict else expect.__name__
            raise ProviderUnavailable(
                f"Infobip {operation} answered {status} with a non-{kind} body", status_code=status
            )
        return data
    detail = f"Infobip {operation} answered {status}"
    envelope = _error_envelope(content)
    if envelope is not None and envelope.get("messageId"):
        detail += f" ({str(envelope['messageId'])[:64]})"
    # Infobip's own error answer means it did not act on the request.
    refused = envelope is not None
    if status == 404:
        raise not_found(detail, status_code=status, nothing_sent=refused)
    if status in (401, 403):
        raise ProviderMisconfigured(
            detail + ": check the API key and its 2FA scopes", status_code=status, nothing_sent=refused
        )
    if status == 429:
        raise ProviderRateLimited(detail, retry_after=_retry_after(headers))
    if 400 <= status < 500:
        raise ProviderRejected(detail, status_code=status, nothing_sent=refused)
    # 3xx (never followed), 5xx and anything odd.
    raise ProviderUnavailable(detail, status_code=status, nothing_sent=refused and status >= 500)


class InfobipProvider(BaseProvider):
    """Send and verify PINs through Infobip's 2FA API."""

    provider_name: ClassVar[str] = "Infobip"
    REQUIRED_OPTIONS: ClassVar[tuple[str, ...]] = (
        "api_key",
        "base_url",
        "application_id",
        "message_id",
    )

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        application_id: str,
        message_id: str,
        voice_message_id: str = "",
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        pool_maxsize: int | None = None,
        proxies: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if pool_maxsize is None:
            # One kept connection per provider call the process may run at
            # once: a smaller pool drops connections under load (a new TLS
            # handshake each), a larger one is never filled.
            pool_maxsize = otp_settings.PROVIDER_MAX_CONCURRENCY or DEFAULT_POOL_MAXSIZE
        self.base_url = normalize_base_url(base_url)
        self.application_id = application_id
        self.message_id = message_id
        # Calls read their own template when there is one: an origin-bound SMS
        # template ends with "@host #code", which text-to-speech would read out.
        self.voice_message_id = voice_message_id or message_id
        self.timeout = (float(connect_timeout), float(read_timeout))
        self.session = build_session(api_key, pool_maxsize, base_url=self.base_url, proxies=proxies)
        # Such a key fails check otp.E013; it is never sent (nor quoted by an HTTP library's error).
        self._key_problem = api_key_problem(api_key)
        install_transport_log_filter()

    def __repr__(self) -> str:  # never the key
        return f"<InfobipProvider {self.base_url}>"

    # -- the contract ----------------------------------------------------------

    def send(self, phone: str, *, channel: str = SMS) -> SendResult:
        body = {
            "applicationId": self.application_id,
            "messageId": self.voice_message_id if channel == VOICE else self.message_id,
            "to": phone.lstrip("+"),
        }
        path = "/2fa/2/pin/voice" if channel == VOICE else "/2fa/2/pin"
        return self._sent(self._post(path, body, operation="voice send" if channel == VOICE else "send"))

    def resend(self, pin_id: str, *, channel: str = SMS) -> SendResult:
        # The same pinId may be resent by the other channel (an SMS PIN read out
        # by voice). The resend takes no messageId: Infobip uses the template of
        # the first send, so services.resend_code sends a new PIN instead when
        # the channels have templates of their own.
        suffix = "/voice" if channel == VOICE else ""
        path = f"/2fa/2/pin/{quote(pin_id, safe='')}/resend{suffix}"
        operation = "voice resend" if channel == VOICE else "resend"
        result = self._sent(self._post(path, {}, operation=operation, not_found=PinNotFound))
        if result.pin_id != pin_id:
            raise ProviderUnavailable("Infobip resend answer is for another pinId")
        return result

    @staticmethod
    def _sent(data: dict[str, Any]) -> SendResult:
        pin_id = data.get("pinId")
        if not isinstance(pin_id, str) or not pin_id:
            raise ProviderUnavailable("Infobip send answer has no pinId")
        sms_status = data.get("smsStatus")
        nc_status = data.get("ncStatus")
        delivered = sms_status != "MESSAGE_NOT_SENT" and nc_status not in _UNREACHABLE_NC
        if not delivered:
            logger.warning(
                "Infobip accepted a send but did not deliver it (smsStatus=%s ncStatus=%s)", sms_status, nc_status
            )
        return SendResult(pin_id=pin_id, delivered=delivered)

    def verify(self, pin_id: str, pin: str) -> VerifyResult:
        path = f"/2fa/2/pin/{quote(pin_id, safe='')}/verify"
        data = self._post(path, {"pin": pin}, operation="verify", not_found=PinNotFound)
        verified = data.get("verified")
        pin_error = data.get("pinError")
        remaining = data.get("attemptsRemaining")
        answered_pin_id = data.get("pinId")
        # Fail closed on anything but the documented shape: "true" is not True.
        if not isinstance(verified, bool):
            raise ProviderUnavailable("Infobip verify answer has no boolean 'verified'")
        if pin_error is not None and not isinstance(pin_error, str):
            raise ProviderUnavailable("Infobip verify answer has a non-string 'pinError'")
        if remaining is not None and (isinstance(remaining, bool) or not isinstance(remaining, int)):
            raise ProviderUnavailable("Infobip verify answer has a non-integer 'attemptsRemaining'")
        if answered_pin_id is not None and answered_pin_id != pin_id:
            raise ProviderUnavailable("Infobip verify answer is for another pinId")
        if verified and pin_error:
            raise ProviderUnavailable("Infobip verify answer is both verified and in error")
        return VerifyResult(verified=verified, pin_error=pin_error, attempts_remaining=remaining)

    # -- HTTP ------------------------------------------------------------------

    def _post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        operation: str,
        not_found: type[ProviderError] = ProviderRejected,
    ) -> dict[str, Any]:
        if self._key_problem:
            raise ProviderMisconfigured(
                f"Infobip {operation} not sent: the API key {self._key_problem}", nothing_sent=True
            )
        return request_json(
            self.session,
            "POST",
            self.base_url + path,
            body=body,
            timeout=self.timeout,
            operation=operation,
            not_found=not_found,
        )

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> list[CheckMessage]:
        errors: list[CheckMessage] = []
        missing = [name for name in cls.REQUIRED_OPTIONS if not options.get(name)]
        if missing:
            errors.append(
                Error(
                    f"The Infobip provider is missing {', '.join(missing)}.",
                    hint="Set OTP['PROVIDER_OPTIONS'] (the demo site reads INFOBIP_API_KEY, "
                    "INFOBIP_BASE_URL, INFOBIP_2FA_APP_ID and INFOBIP_2FA_MSG_ID).",
                    id="otp.E010",
                )
            )
        if options.get("base_url"):
            try:
                normalize_base_url(options["base_url"])
            except InvalidBaseUrl as err:
                errors.append(
                    Error(
                        f"Invalid Infobip base URL: {err}.",
                        hint="Use the account host, e.g. xyz.api.infobip.com.",
                        id="otp.E011",
                    )
                )
        api_key = options.get("api_key")
        if isinstance(api_key, str) and api_key and (problem := api_key_problem(api_key)):
            errors.append(
                Error(
                    f"The Infobip API key cannot be sent: {problem}.",
                    hint="Strip the key (a key read from a file often ends with a newline).",
                    id="otp.E013",
                )
            )
        errors.extend(_check_proxies(options.get("proxies")))
        domain = otp_settings.WEBOTP_DOMAIN
        if domain and VOICE in otp_settings.CHANNELS and not options.get("voice_message_id"):
            errors.append(
                Warning(
                    "Voice calls use the SMS template, whose last line (origin-bound codes, "
                    f"OTP['WEBOTP_DOMAIN'] = {domain!r}) text-to-speech reads out.",
                    hint="Run otp_provision to create a voice template and set its ID as "
                    "OTP['PROVIDER_OPTIONS']['voice_message_id'] (INFOBIP_2FA_VOICE_MSG_ID), "
                    "or leave 'voice' out of OTP['CHANNELS'].",
                    id="otp.W015",
                )
            )
        for name in ("connect_timeout", "read_timeout"):
            value = options.get(name, 1)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                errors.append(Error(f"Infobip {name} must be a positive number of seconds.", id="otp.E012"))
        return errors


def _check_proxies(proxies: Any) -> list[CheckMessage]:
    if proxies is None:
        return []
    if not isinstance(proxies, dict):
        return [
            Error("The Infobip proxies option must be a dict such as {'https': 'http://proxy:3128'}.", id="otp.E014")
        ]
    errors: list[CheckMessage] = []
    for scheme, url in proxies.items():
        if not isinstance(url, str) or urlsplit(url).scheme not in _PROXY_SCHEMES or not urlsplit(url).hostname:
            shown = redact_url_credentials(url) if isinstance(url, str) else type(url).__name__
            errors.append(
                Error(
                    f"The Infobip proxy for {scheme!r} is not a proxy URL: {shown}.",
                    hint=f"Use a URL with one of the schemes {', '.join(_PROXY_SCHEMES)}.",
                    id="otp.E014",
                )
            )
    return errors


def _retry_after(headers: CaseInsensitiveDict[str]) -> int | None:
    value = headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None

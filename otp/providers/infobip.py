"""Infobip 2FA over HTTP with ``requests`` (sent by :mod:`otp.providers.transport`).

Transport only: it turns Infobip's answers into :class:`SendResult`,
:class:`VerifyResult` and typed exceptions. See Infobip's API reference for
``POST /2fa/2/pin`` and ``POST /2fa/2/pin/{pinId}/verify``. :func:`build_session`
and :func:`request_json` are shared with the management client, so every call
to Infobip is authenticated, timed and mapped the same way.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests
import urllib3
from django.core.checks import CheckMessage, Error
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict
from urllib3.util.retry import Retry

from otp import __version__
from otp.conf import otp_settings
from otp.exceptions import (
    PinNotFound,
    ProviderError,
    ProviderMisconfigured,
    ProviderRateLimited,
    ProviderUnavailable,
)
from otp.net import is_loopback
from otp.providers.base import SMS, VOICE, BaseProvider, SendResult, VerifyResult
from otp.providers.transport import KeepAliveAdapter
from otp.redaction import install_transport_log_filter

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 10.0
# Statuses in which Infobip says no SMS went out (the docs also spell it NC_NOT_REACHABLE).
_UNREACHABLE_NC = {"NC_DESTINATION_NOT_REACHABLE", "NC_NOT_REACHABLE"}


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


def _retry_policy() -> Retry:
    # A connection that was never made cannot have reached Infobip, so one retry
    # is safe. Anything after the request was sent is never retried: a repeated
    # send is a second charged SMS and a second valid PIN.
    return Retry(
        total=1,
        connect=1,
        read=0,
        status=0,
        other=0,
        redirect=0,
        allowed_methods=None,
        raise_on_status=False,
        raise_on_redirect=False,
    )


#: Connections kept to Infobip when the provider calls are not bounded.
DEFAULT_POOL_MAXSIZE = 32


def build_session(api_key: str, pool_maxsize: int = DEFAULT_POOL_MAXSIZE) -> requests.Session:
    """A session that sends ``Authorization: App <key>`` and JSON, and never retries a sent request."""
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc credentials picked up by surprise
    session.headers.update(
        {
            "Authorization": f"App {api_key}",
            "Accept": "application/json",
            "User-Agent": f"django-otp-infobip/{__version__}",
            # Answers are a few hundred bytes: nothing to gain from compression.
            "Accept-Encoding": "identity",
        }
    )
    adapter = KeepAliveAdapter(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=_retry_policy())
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
    not_found: type[ProviderError] = ProviderMisconfigured,
    expect: type = dict,
) -> Any:
    """Call Infobip and return its JSON answer (of type ``expect``), or raise a typed error.

    Redirects are never followed: the ``Authorization`` header must not travel elsewhere.
    """
    try:
        response = session.get_adapter(url).send(_prepared(session, method, url, body), timeout=timeout)
    except requests.RequestException as err:
        if _is_timeout(err):
            kind = type(err).__name__ if isinstance(err, requests.Timeout) else "ReadTimeout"
            raise ProviderUnavailable(f"Infobip {operation} timed out ({kind})") from err
        raise ProviderUnavailable(f"Infobip {operation} failed: {type(err).__name__}") from err
    return _parse(response, operation=operation, not_found=not_found, expect=expect)


def _prepared(session: requests.Session, method: str, url: str, body: dict[str, Any] | None) -> PreparedRequest:
    """The request ``session.request`` would build, without its per-call merging.

    ``Session.request`` merges environment, proxy, cookie and hook settings on
    every call, none of which this client uses (``trust_env`` is off, Infobip
    sets no cookies, redirects are not followed); that doubled the CPU cost of
    a call to Infobip. The adapter, its connection pool and retry policy are
    the session's, so tests that mock ``requests`` see the same request.
    """
    request = PreparedRequest()
    request.method = method
    request.url = url
    request.headers = CaseInsensitiveDict(session.headers)  # type: ignore[arg-type]  # str values only
    if body is not None:
        request.body = json.dumps(body, allow_nan=False).encode()
        request.headers["Content-Type"] = "application/json"
        request.headers["Content-Length"] = str(len(request.body))
    elif method not in ("GET", "HEAD"):
        request.headers["Content-Length"] = "0"
    return request


def _is_timeout(err: requests.RequestException) -> bool:
    """True for connect and read timeouts, including those urllib3 wraps.

    With retries configured, urllib3 reports a read timeout as MaxRetryError,
    which requests raises as a ConnectionError; the timeout is its ``reason``.
    """
    if isinstance(err, requests.Timeout):
        return True
    reason = getattr(err.args[0], "reason", None) if err.args else None
    # urllib3 files a refused connection (NewConnectionError) under its timeouts.
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def _error_id(response: requests.Response) -> str:
    try:
        envelope = response.json()["requestError"]
        exc = envelope.get("serviceException") or envelope.get("policyException") or {}
        return str(exc.get("messageId") or "")[:64]
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


def _parse(
    response: requests.Response,
    *,
    operation: str,
    not_found: type[ProviderError],
    expect: type,
) -> Any:
    status = response.status_code
    if 200 <= status < 300:
        try:
            data = response.json()
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
    error_id = _error_id(response)
    if error_id:
        detail += f" ({error_id})"
    if status == 404:
        raise not_found(detail, status_code=status)
    if status in (401, 403):
        raise ProviderMisconfigured(detail + ": check the API key and its 2FA scopes", status_code=status)
    if status == 429:
        raise ProviderRateLimited(detail, retry_after=_retry_after(response))
    if 400 <= status < 500:
        raise ProviderMisconfigured(detail, status_code=status)
    # 3xx (never followed), 5xx and anything odd.
    raise ProviderUnavailable(detail, status_code=status)


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
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        pool_maxsize: int | None = None,
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
        self.timeout = (float(connect_timeout), float(read_timeout))
        self.session = build_session(api_key, pool_maxsize)
        install_transport_log_filter()

    def __repr__(self) -> str:  # never the key
        return f"<InfobipProvider {self.base_url}>"

    # -- the contract ----------------------------------------------------------

    def send(self, phone: str, *, channel: str = SMS) -> SendResult:
        body = {
            "applicationId": self.application_id,
            "messageId": self.message_id,
            "to": phone.lstrip("+"),
        }
        path = "/2fa/2/pin/voice" if channel == VOICE else "/2fa/2/pin"
        return self._sent(self._post(path, body, operation="voice send" if channel == VOICE else "send"))

    def resend(self, pin_id: str, *, channel: str = SMS) -> SendResult:
        # The same pinId may be resent by the other channel (an SMS PIN read out by voice).
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
        not_found: type[ProviderError] = ProviderMisconfigured,
    ) -> dict[str, Any]:
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
        for name in ("connect_timeout", "read_timeout"):
            value = options.get(name, 1)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                errors.append(Error(f"Infobip {name} must be a positive number of seconds.", id="otp.E012"))
        return errors


def _retry_after(response: requests.Response) -> int | None:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None

"""System checks for the app's settings (ids ``otp.E0xx`` / ``otp.W0xx``).

Retired ids stay reserved. E010-E019 belong to the Infobip provider's
``check_options``; E020-E029 / W020-W029 to the limits; E030-E039 to the
verification token; E040-E049 / W040-W049 to the other settings (timing,
monitoring, integration, resilience, origin-bound codes, the HTML pages) and
to the ``OTP`` dict itself.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.module_loading import import_string

from otp.conf import DEFAULTS, MAX_CODE_TTL_SECONDS, otp_settings
from otp.exceptions import OtpConfigurationError
from otp.providers import load_provider_class
from otp.providers.base import SMS, VOICE
from otp.providers.webotp import host_problem
from otp.validators.purposes import is_slug

# django-ratelimit's rate grammar: count "/" optional multiplier and unit.
_RATE = re.compile(r"[0-9]+/[0-9]*[smhd]")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_list(value: Any) -> bool:
    """A list, tuple or set: a string would match its substrings."""
    return isinstance(value, (list, tuple, set, frozenset))


@register(Tags.security)
def check_provider(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        cls = load_provider_class(otp_settings.PROVIDER)
    except OtpConfigurationError as err:
        return [
            Error(
                f"No usable OTP provider: {err}",
                hint="Set OTP['PROVIDER'], e.g. 'otp.providers.infobip.InfobipProvider'.",
                id="otp.E001",
            )
        ]
    if cls.is_development_only and not settings.DEBUG:
        return [
            Error(
                f"{cls.__name__} is configured while DEBUG is off: it sends no real SMS and writes PINs to the log.",
                hint="Configure the Infobip provider for production.",
                id="otp.E002",
            )
        ]
    return list(cls.check_options(otp_settings.PROVIDER_OPTIONS))


@register(Tags.security)
def check_policy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    pin_length = otp_settings.PIN_LENGTH
    if not _is_int(pin_length) or not 6 <= pin_length <= 10:
        errors.append(
            Error(
                "OTP['PIN_LENGTH'] must be an integer from 6 to 10.",
                hint="NIST SP 800-63B asks for at least 6 digits.",
                id="otp.E003",
            )
        )
    ttl = otp_settings.CODE_TTL_SECONDS
    if not _is_int(ttl) or not 1 <= ttl <= MAX_CODE_TTL_SECONDS:
        errors.append(
            Error(
                f"OTP['CODE_TTL_SECONDS'] must be an integer from 1 to {MAX_CODE_TTL_SECONDS}.",
                hint="A PIN may live at most 10 minutes.",
                id="otp.E004",
            )
        )
    attempts = otp_settings.MAX_VERIFY_ATTEMPTS
    if not _is_int(attempts) or not 1 <= attempts <= 10:
        errors.append(Error("OTP['MAX_VERIFY_ATTEMPTS'] must be an integer from 1 to 10.", id="otp.E005"))
    region = otp_settings.DEFAULT_REGION
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        errors.append(
            Error(
                f"OTP['DEFAULT_REGION'] = {region!r} is not a supported region code.",
                hint="Use an ISO 3166-1 alpha-2 code such as 'US', or None.",
                id="otp.E006",
            )
        )
    max_bytes = otp_settings.MAX_REQUEST_BYTES
    if not _is_int(max_bytes) or max_bytes < 128:
        errors.append(Error("OTP['MAX_REQUEST_BYTES'] must be an integer of at least 128.", id="otp.E007"))
    retention = otp_settings.RETENTION_DAYS
    if not _is_int(retention) or retention < 0:
        errors.append(Error("OTP['RETENTION_DAYS'] must be a non-negative integer.", id="otp.E008"))
    token_age = otp_settings.VERIFICATION_TOKEN_MAX_AGE_SECONDS
    if not _is_int(token_age) or token_age < 1:
        errors.append(
            Error(
                "OTP['VERIFICATION_TOKEN_MAX_AGE_SECONDS'] must be a positive integer.",
                hint="None would accept a verificationToken for ever; the default is 600.",
                id="otp.E030",
            )
        )
    return errors


@register(Tags.security)
def check_challenge_verifier(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # The path is imported on every send: a typo found here fails the start,
    # not each request.
    path = otp_settings.SEND_CHALLENGE_VERIFIER
    if not path:
        return []
    if not isinstance(path, str):
        problem = "not a dotted path"
    else:
        try:
            problem = "" if callable(import_string(path)) else "not a callable"
        except ImportError as err:
            problem = str(err)
    if not problem:
        return []
    return [
        Error(
            f"OTP['SEND_CHALLENGE_VERIFIER'] = {path!r} is unusable: {problem}.",
            hint="Give the dotted path of a callable verify(request, token) -> bool, or None.",
            id="otp.E009",
        )
    ]


_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.filebased.FileBasedCache",
)


def _limiter_cache() -> tuple[str, dict[str, Any]]:
    """The alias and configuration of the cache the IP limits count in."""
    alias = getattr(settings, "RATELIMIT_USE_CACHE", "default")
    return alias, settings.CACHES.get(alias, {})


def _limiter_cache_is_local() -> bool:
    return _limiter_cache()[1].get("BACKEND", "") in _LOCAL_CACHES


def _ip_limits_on() -> bool:
    return otp_settings.IP_SEND_RATE is not None or otp_settings.IP_VERIFY_RATE is not None


@register(Tags.security)
def check_limiter_cache(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if _ip_limits_on() and _limiter_cache_is_local():
        return [
            Warning(
                "IP limits are per process: the rate-limit cache is not shared.",
                hint="Point RATELIMIT_USE_CACHE at a shared cache such as Redis (REDIS_URL in otpsite).",
                id="otp.W020",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_limiter_cache_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if _ip_limits_on() and _limiter_cache_is_local():
        return [
            Error(
                "IP limits need a shared cache in production; the rate-limit cache is per process.",
                hint="Point RATELIMIT_USE_CACHE at Redis or Memcached.",
                id="otp.E021",
            )
        ]
    return []


# Redis backends that leave the wait for a reply to redis-py's default, and
# the OPTIONS key that sets it. otp.cache.RedisCache sets one; Memcached's
# clients have their own.
_UNBOUNDED_REDIS_BACKENDS = {
    "django.core.cache.backends.redis.RedisCache": "socket_timeout",
    "django_redis.cache.RedisCache": "SOCKET_TIMEOUT",
}


@register(Tags.security, deploy=True)
def check_limiter_cache_timeout_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    alias, config = _limiter_cache()
    option = _UNBOUNDED_REDIS_BACKENDS.get(config.get("BACKEND", ""))
    if not _ip_limits_on() or option is None:
        return []
    if config.get("OPTIONS", {}).get(option) or "socket_timeout=" in str(config.get("LOCATION", "")):
        return []
    return [
        Warning(
            "The rate-limit cache sets no socket timeout: a Redis that stops answering holds "
            "each OTP request for redis-py's default wait (5 s per call from redis-py 8, unbounded before).",
            hint=f"Use otp.cache.RedisCache (1 s by default) or set CACHES['{alias}']['OPTIONS']['{option}'].",
            id="otp.W029",
        )
    ]


@register(Tags.security, deploy=True)
def check_allowed_regions_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if otp_settings.ALLOWED_REGIONS is None:
        return [
            Warning(
                "OTP['ALLOWED_REGIONS'] is not set: codes may be sent to every country.",
                hint="List the regions your users live in; SMS pumping targets the others.",
                id="otp.W022",
            )
        ]
    return []


_OPTIONAL_COUNTS = (
    "MAX_SENDS_PER_PHONE_PER_DAY",
    "MAX_FAILURES_PER_PHONE",
    "MAX_SENDS_PER_PREFIX_PER_HOUR",
    "MAX_SENDS_PER_COUNTRY_PER_HOUR",
    "MAX_SENDS_PER_HOUR",
    "MAX_SENDS_PER_DAY",
    "PROVIDER_THROTTLE_ALERT_NUMBERS",
)
_SECONDS = (
    "RESEND_COOLDOWN_SECONDS",
    "RESEND_COOLDOWN_MAX_SECONDS",
    "FAILURE_BACKOFF_SECONDS",
    "FAILURE_BACKOFF_MAX_SECONDS",
    "PREFIX_BLOCK_SECONDS",
    "COUNTRY_BLOCK_SECONDS",
    "TRUSTED_PROXY_COUNT",
    "PREFIX_STRIP_DIGITS",
)


@register(Tags.security)
def check_limits(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name in _OPTIONAL_COUNTS:
        value = getattr(otp_settings, name)
        if value is not None and (not _is_int(value) or value < 1):
            errors.append(Error(f"OTP['{name}'] must be a positive integer or None (off).", id="otp.E023"))
    for name in _SECONDS:
        value = getattr(otp_settings, name)
        if not _is_int(value) or value < 0:
            errors.append(Error(f"OTP['{name}'] must be a non-negative integer.", id="otp.E024"))
    failures = otp_settings.MAX_FAILURES_PER_PHONE
    if failures is not None and _is_int(failures) and failures > 100:
        errors.append(
            Error(
                "OTP['MAX_FAILURES_PER_PHONE'] must be at most 100.",
                hint="NIST SP 800-63B caps consecutive failed attempts at 100.",
                id="otp.E025",
            )
        )
    for name in ("IP_SEND_RATE", "IP_VERIFY_RATE"):
        value = getattr(otp_settings, name)
        if value is not None and not (isinstance(value, str) and _RATE.fullmatch(value)):
            errors.append(Error(f"OTP['{name}'] must look like '5/15m' (count/period) or be None.", id="otp.E026"))
    regions = otp_settings.ALLOWED_REGIONS
    if regions is not None:
        unknown = [r for r in regions if str(r).upper() not in phonenumbers.SUPPORTED_REGIONS]
        if isinstance(regions, str) or unknown:
            errors.append(
                Error(f"OTP['ALLOWED_REGIONS'] must be a list of region codes; unknown: {unknown}.", id="otp.E027")
            )
    types = otp_settings.ALLOWED_NUMBER_TYPES or ()
    known = {name for name in vars(phonenumbers.PhoneNumberType) if name.isupper()}
    bad_types = [t for t in types if str(t).upper() not in known]
    if isinstance(types, str) or bad_types:
        errors.append(
            Error(
                f"OTP['ALLOWED_NUMBER_TYPES'] has unknown types: {bad_types}.",
                hint=f"Use names of phonenumbers.PhoneNumberType: {sorted(known)}.",
                id="otp.E028",
            )
        )
    return errors


@register(Tags.security)
def check_unknown_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # A misspelt key is ignored and its default applies, so a limit the site
    # meant to tighten would silently stay as it was.
    user_settings = getattr(settings, "OTP", None) or {}
    warnings: list[CheckMessage] = []
    for key in sorted(set(user_settings) - set(DEFAULTS), key=str):
        close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
        hint = f"Did you mean OTP[{close[0]!r}]?" if close else "The settings reference lists every key."
        warnings.append(Warning(f"OTP[{key!r}] is not a setting of the app; it is ignored.", hint=hint, id="otp.W040"))
    return warnings


@register(Tags.security)
def check_other_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    percents = otp_settings.BUDGET_ALERT_PERCENTS
    if percents is not None and not (_is_list(percents) and all(_is_int(p) and 1 <= p <= 100 for p in percents)):
        errors.append(
            Error("OTP['BUDGET_ALERT_PERCENTS'] must be a list of integers from 1 to 100, or None.", id="otp.E040")
        )
    for name in ("VERIFY_FAILURE_MIN_SECONDS", "VERIFY_FAILURE_MAX_SECONDS"):
        value = getattr(otp_settings, name)
        if not _is_number(value) or value < 0:
            errors.append(Error(f"OTP['{name}'] must be a non-negative number of seconds.", id="otp.E041"))
    queue_timeout = otp_settings.PROVIDER_QUEUE_TIMEOUT_SECONDS
    if queue_timeout is not None and (not _is_number(queue_timeout) or queue_timeout < 0):
        errors.append(
            Error(
                "OTP['PROVIDER_QUEUE_TIMEOUT_SECONDS'] must be a non-negative number of seconds, or None (no bound).",
                id="otp.E041",
            )
        )
    threshold = otp_settings.CONVERSION_ALERT_THRESHOLD
    if not _is_number(threshold) or not 0 <= threshold <= 1:
        errors.append(Error("OTP['CONVERSION_ALERT_THRESHOLD'] must be a number from 0 to 1.", id="otp.E042"))
    min_sends = otp_settings.CONVERSION_MIN_SENDS
    if not _is_int(min_sends) or min_sends < 1:
        errors.append(Error("OTP['CONVERSION_MIN_SENDS'] must be a positive integer.", id="otp.E042"))
    for name in ("CIRCUIT_FAILURES", "PROVIDER_MAX_CONCURRENCY"):
        value = getattr(otp_settings, name)
        if value is not None and (not _is_int(value) or value < 0):
            errors.append(Error(f"OTP['{name}'] must be a non-negative integer or None (off).", id="otp.E043"))
    open_seconds = otp_settings.CIRCUIT_OPEN_SECONDS
    if otp_settings.CIRCUIT_FAILURES and (not _is_int(open_seconds) or open_seconds < 1):
        errors.append(
            Error(
                "OTP['CIRCUIT_OPEN_SECONDS'] must be a positive integer while the circuit is on.",
                hint="Without it an open circuit would stay open; CIRCUIT_FAILURES = None turns the circuit off.",
                id="otp.E043",
            )
        )
    purposes = otp_settings.PURPOSES
    if purposes is not None and not (_is_list(purposes) and purposes and all(is_slug(p) for p in purposes)):
        errors.append(
            Error(
                "OTP['PURPOSES'] must be a non-empty list of short lowercase slugs, or None (any).",
                hint="For example ['signup', 'login'].",
                id="otp.E044",
            )
        )
    if not is_slug(otp_settings.DEFAULT_PURPOSE):
        errors.append(Error("OTP['DEFAULT_PURPOSE'] must be a short lowercase slug.", id="otp.E044"))
    channels = otp_settings.CHANNELS
    if not (_is_list(channels) and channels and set(channels) <= {SMS, VOICE}):
        errors.append(Error(f"OTP['CHANNELS'] must be a non-empty list of {SMS!r} and {VOICE!r}.", id="otp.E045"))
    if not isinstance(otp_settings.VERIFICATION_TOKEN_SINGLE_USE, bool):
        errors.append(Error("OTP['VERIFICATION_TOKEN_SINGLE_USE'] must be True or False.", id="otp.E031"))
    if otp_settings.CIRCUIT_CACHE not in settings.CACHES:
        errors.append(
            Error(
                f"OTP['CIRCUIT_CACHE'] = {otp_settings.CIRCUIT_CACHE!r} is not an alias of CACHES.",
                hint="Name a shared cache such as Redis, so every process sees the circuit open.",
                id="otp.E046",
            )
        )
    return errors


@register(Tags.security)
def check_webotp_domain(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # The host goes into every SMS as "@host #code"; a browser offers the code
    # only on a page of exactly that host, so a URL here would silently turn
    # autofill off.
    domain = otp_settings.WEBOTP_DOMAIN
    problem = host_problem(domain) if domain is not None else None
    if not problem:
        return []
    return [
        Error(
            f"OTP['WEBOTP_DOMAIN'] = {domain!r} is not a bare host: {problem}.",
            hint="Give the host your users' browser shows for the verification page, without scheme, port "
            "or path, e.g. 'example.com'; None turns origin-bound codes off.",
            id="otp.E047",
        )
    ]


@register(Tags.templates)
def check_web_pages(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for name in ("WEB_BASE_TEMPLATE", "WEB_SUCCESS_URL"):
        value = getattr(otp_settings, name)
        if not isinstance(value, str) or not value.strip():
            messages.append(Error(f"OTP['{name}'] must be a non-empty string.", id="otp.E048"))
    base = otp_settings.WEB_BASE_TEMPLATE
    # Only a template the site named: a site that serves no pages need not
    # have a template engine that finds the app's own.
    if isinstance(base, str) and base.strip() and base != DEFAULTS["WEB_BASE_TEMPLATE"]:
        try:
            get_template(base)
        except TemplateDoesNotExist:
            messages.append(
                Warning(
                    f"OTP['WEB_BASE_TEMPLATE'] = {base!r} is not found by any template engine.",
                    hint="Name a template with a {% block content %}, or leave the key out for the app's own.",
                    id="otp.W048",
                )
            )
    return messages

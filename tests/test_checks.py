"""System checks: one test per id, and ``manage.py check`` failing on errors."""

from __future__ import annotations

import io

import pytest
from django.core.checks import WARNING
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from otp.checks import (
    check_allowed_regions_deploy,
    check_challenge_verifier,
    check_limiter_cache,
    check_limiter_cache_deploy,
    check_limiter_cache_timeout_deploy,
    check_limits,
    check_other_settings,
    check_policy,
    check_provider,
    check_unknown_keys,
    check_web_pages,
    check_webotp_domain,
)
from otp.conf import DEFAULTS, OtpSettings
from tests.conftest import INFOBIP_OPTIONS

INFOBIP = "otp.providers.infobip.InfobipProvider"


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_defaults_pass():
    assert check_provider() == [] and check_policy() == []


@pytest.mark.parametrize("provider", [None, "", "otp.providers.nope.Nope", "otp.conf.OtpSettings"])
def test_unusable_provider(settings, provider):
    settings.OTP = {"PROVIDER": provider}
    assert ids(check_provider()) == ["otp.E001"]


def test_development_provider_refused_without_debug(settings):
    settings.OTP = {"PROVIDER": "otp.providers.development.DevelopmentProvider"}
    settings.DEBUG = False
    assert ids(check_provider()) == ["otp.E002"]
    settings.DEBUG = True
    assert check_provider() == []


def test_infobip_options(settings):
    settings.OTP = {"PROVIDER": INFOBIP, "PROVIDER_OPTIONS": dict(INFOBIP_OPTIONS)}
    assert check_provider() == []
    settings.OTP = {"PROVIDER": INFOBIP, "PROVIDER_OPTIONS": {**INFOBIP_OPTIONS, "api_key": ""}}
    assert ids(check_provider()) == ["otp.E010"]
    settings.OTP = {"PROVIDER": INFOBIP, "PROVIDER_OPTIONS": {**INFOBIP_OPTIONS, "base_url": "http://example.com"}}
    assert ids(check_provider()) == ["otp.E011"]
    settings.OTP = {"PROVIDER": INFOBIP, "PROVIDER_OPTIONS": {**INFOBIP_OPTIONS, "read_timeout": 0}}
    assert ids(check_provider()) == ["otp.E012"]


@pytest.mark.parametrize("key", ["k-123\n", " k-123", "k 123", "k-123\x00", "k-\u00e9123"])
def test_an_infobip_key_that_cannot_be_sent_fails_the_check_without_showing_it(settings, key):
    settings.OTP = {"PROVIDER": INFOBIP, "PROVIDER_OPTIONS": {**INFOBIP_OPTIONS, "api_key": key}}
    (error,) = check_provider()
    assert error.id == "otp.E013" and "123" not in str(error)


@pytest.mark.parametrize(
    ("proxies", "valid"),
    [
        ({"https": "http://user:pa55word@proxy.internal:3128"}, True),
        ({"https": "socks5h://proxy.internal:1080"}, True),
        ({"https": "proxy.internal:3128"}, False),
        ({"https": "ftp://user:pa55word@proxy.internal"}, False),
        ("http://proxy.internal:3128", False),
    ],
)
def test_infobip_proxies_are_checked_without_showing_their_credentials(settings, proxies, valid):
    settings.OTP = {"PROVIDER": INFOBIP, "PROVIDER_OPTIONS": {**INFOBIP_OPTIONS, "proxies": proxies}}
    errors = check_provider()
    assert ids(errors) == ([] if valid else ["otp.E014"])
    assert "pa55word" not in " ".join(map(str, errors))


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("PIN_LENGTH", 5, "otp.E003"),
        ("PIN_LENGTH", 11, "otp.E003"),
        ("PIN_LENGTH", "6", "otp.E003"),
        ("CODE_TTL_SECONDS", 601, "otp.E004"),
        ("CODE_TTL_SECONDS", 0, "otp.E004"),
        ("MAX_VERIFY_ATTEMPTS", 0, "otp.E005"),
        ("MAX_VERIFY_ATTEMPTS", 11, "otp.E005"),
        ("DEFAULT_REGION", "XX", "otp.E006"),
        ("MAX_REQUEST_BYTES", 10, "otp.E007"),
        ("RETENTION_DAYS", -1, "otp.E008"),
        # None would make the verification token live for ever.
        ("VERIFICATION_TOKEN_MAX_AGE_SECONDS", None, "otp.E030"),
        ("VERIFICATION_TOKEN_MAX_AGE_SECONDS", 0, "otp.E030"),
        ("VERIFICATION_TOKEN_MAX_AGE_SECONDS", -600, "otp.E030"),
        ("VERIFICATION_TOKEN_MAX_AGE_SECONDS", "600", "otp.E030"),
    ],
)
def test_policy_errors(settings, key, value, check_id):
    settings.OTP = {**settings.OTP, key: value}
    assert ids(check_policy()) == [check_id]


LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
DJANGO_REDIS = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}


def test_a_per_process_limiter_cache_warns_and_fails_deploy(settings):
    settings.CACHES = {"default": LOCMEM}
    assert check_limiter_cache() == [] and check_limiter_cache_deploy() == []  # IP limits off
    settings.OTP = {**settings.OTP, "IP_SEND_RATE": "5/15m"}
    assert ids(check_limiter_cache()) == ["otp.W020"]
    assert ids(check_limiter_cache_deploy()) == ["otp.E021"]
    settings.CACHES = {"default": LOCMEM, "limits": DJANGO_REDIS}
    settings.RATELIMIT_USE_CACHE = "limits"
    assert check_limiter_cache() == [] and check_limiter_cache_deploy() == []


@pytest.mark.parametrize(
    ("cache", "warned"),
    [
        (DJANGO_REDIS, True),
        ({**DJANGO_REDIS, "OPTIONS": {"socket_timeout": 1.0}}, False),
        ({**DJANGO_REDIS, "LOCATION": "redis://127.0.0.1:6379/0?socket_timeout=2"}, False),
        ({"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}, True),
        ({"BACKEND": "django_redis.cache.RedisCache", "OPTIONS": {"SOCKET_TIMEOUT": 1}}, False),
        ({**DJANGO_REDIS, "BACKEND": "otp.cache.RedisCache"}, False),  # bounded by default
        (LOCMEM, False),
    ],
)
def test_a_redis_limiter_cache_without_a_socket_timeout_warns_on_deploy(settings, cache, warned):
    settings.CACHES = {"default": cache}
    settings.OTP = {**settings.OTP, "IP_VERIFY_RATE": "10/h"}
    assert ids(check_limiter_cache_timeout_deploy()) == (["otp.W029"] if warned else [])
    settings.OTP = {**settings.OTP, "IP_VERIFY_RATE": None}
    assert check_limiter_cache_timeout_deploy() == []  # nothing counts in it


def test_unset_allowed_regions_warn_on_deploy(settings):
    settings.OTP = {**settings.OTP, "ALLOWED_REGIONS": None}
    assert ids(check_allowed_regions_deploy()) == ["otp.W022"]
    settings.OTP = {**settings.OTP, "ALLOWED_REGIONS": ["US"]}
    assert check_allowed_regions_deploy() == []


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("MAX_SENDS_PER_HOUR", 0, "otp.E023"),
        ("MAX_SENDS_PER_PHONE_PER_DAY", "5", "otp.E023"),
        ("RESEND_COOLDOWN_SECONDS", -1, "otp.E024"),
        ("TRUSTED_PROXY_COUNT", 1.5, "otp.E024"),
        ("MAX_FAILURES_PER_PHONE", 101, "otp.E025"),
        ("IP_SEND_RATE", "5 per minute", "otp.E026"),
        ("ALLOWED_REGIONS", ["US", "XX"], "otp.E027"),
        ("ALLOWED_REGIONS", "US", "otp.E027"),
        ("ALLOWED_NUMBER_TYPES", ["MOBILE", "PAGER2"], "otp.E028"),
    ],
)
def test_limit_errors(settings, key, value, check_id):
    assert check_limits() == []
    settings.OTP = {**settings.OTP, key: value}
    assert ids(check_limits()) == [check_id]


@pytest.mark.parametrize(
    "path",
    [
        "tests.test_abuse_extras.accept_only_gud",  # a typo in the name
        "tests.test_abuse_extra.accept_only_good",  # a typo in the module
        "accept_only_good",  # no module at all
        "otp.conf.MAX_CODE_TTL_SECONDS",  # not callable
        42,
    ],
)
def test_an_unusable_send_challenge_verifier_fails_the_checks(settings, path):
    settings.OTP = {**settings.OTP, "SEND_CHALLENGE_VERIFIER": path}
    assert ids(check_challenge_verifier()) == ["otp.E009"]
    with pytest.raises(SystemCheckError, match="otp.E009"):
        call_command("check")


@pytest.mark.parametrize("path", [None, "", "tests.test_abuse_extras.accept_only_good"])
def test_a_usable_or_no_send_challenge_verifier_passes(settings, path):
    settings.OTP = {**settings.OTP, "SEND_CHALLENGE_VERIFIER": path}
    assert check_challenge_verifier() == []


def test_manage_check_fails_on_error(settings):
    settings.OTP = {**settings.OTP, "CODE_TTL_SECONDS": 3600}
    with pytest.raises(SystemCheckError, match="otp.E004"):
        call_command("check")


@pytest.mark.django_db
def test_migrations_are_complete():
    call_command("makemigrations", "otp", "--check", "--dry-run", verbosity=0)


# A malformed value of every key of OTP, and the check that reports it.
MALFORMED = {
    "PROVIDER": ("otp.providers.nope.Nope", "otp.E001"),
    "PROVIDER_OPTIONS": ({**INFOBIP_OPTIONS, "api_key": ""}, "otp.E010"),
    "PIN_LENGTH": (5, "otp.E003"),
    "CODE_TTL_SECONDS": (601, "otp.E004"),
    "MAX_VERIFY_ATTEMPTS": (0, "otp.E005"),
    "DEFAULT_REGION": ("XX", "otp.E006"),
    "MAX_REQUEST_BYTES": (64, "otp.E007"),
    "RETENTION_DAYS": (-1, "otp.E008"),
    "IP_SEND_RATE": ("5 per minute", "otp.E026"),
    "IP_VERIFY_RATE": (10, "otp.E026"),
    "TRUSTED_PROXY_COUNT": (-1, "otp.E024"),
    "RESEND_COOLDOWN_SECONDS": (-1, "otp.E024"),
    "RESEND_COOLDOWN_MAX_SECONDS": ("900", "otp.E024"),
    "MAX_SENDS_PER_PHONE_PER_DAY": (0, "otp.E023"),
    "MAX_FAILURES_PER_PHONE": (101, "otp.E025"),
    "FAILURE_BACKOFF_SECONDS": (-1, "otp.E024"),
    "FAILURE_BACKOFF_MAX_SECONDS": (None, "otp.E024"),
    "PREFIX_STRIP_DIGITS": (-1, "otp.E024"),
    "MAX_SENDS_PER_PREFIX_PER_HOUR": (0, "otp.E023"),
    "PREFIX_BLOCK_SECONDS": (-1, "otp.E024"),
    "MAX_SENDS_PER_COUNTRY_PER_HOUR": (0, "otp.E023"),
    "COUNTRY_BLOCK_SECONDS": (-1, "otp.E024"),
    "MAX_SENDS_PER_HOUR": (0, "otp.E023"),
    "MAX_SENDS_PER_DAY": (0, "otp.E023"),
    "BUDGET_ALERT_PERCENTS": ((50, 150), "otp.E040"),
    "ALLOWED_REGIONS": (["XX"], "otp.E027"),
    "ALLOWED_NUMBER_TYPES": (["PAGER2"], "otp.E028"),
    "VERIFY_FAILURE_MIN_SECONDS": (-0.1, "otp.E041"),
    "VERIFY_FAILURE_MAX_SECONDS": ("1", "otp.E041"),
    "SEND_CHALLENGE_VERIFIER": ("otp.nope.verify", "otp.E009"),
    "CONVERSION_ALERT_THRESHOLD": (20, "otp.E042"),
    "CONVERSION_MIN_SENDS": (0, "otp.E042"),
    "PURPOSES": ("login", "otp.E044"),
    "DEFAULT_PURPOSE": ("Sign Up", "otp.E044"),
    "CHANNELS": (("sms", "fax"), "otp.E045"),
    "WEBOTP_DOMAIN": ("https://example.com", "otp.E047"),
    "VERIFICATION_TOKEN_MAX_AGE_SECONDS": (None, "otp.E030"),
    "VERIFICATION_TOKEN_SINGLE_USE": ("no", "otp.E031"),
    "CIRCUIT_FAILURES": (-1, "otp.E043"),
    "CIRCUIT_OPEN_SECONDS": (None, "otp.E043"),
    "CIRCUIT_CACHE": ("nope", "otp.E046"),
    "PROVIDER_MAX_CONCURRENCY": (1.5, "otp.E043"),
    "PROVIDER_QUEUE_TIMEOUT_SECONDS": (-1, "otp.E041"),
    "PROVIDER_THROTTLE_ALERT_NUMBERS": (0, "otp.E023"),
    "WEB_BASE_TEMPLATE": ("", "otp.E048"),
    "WEB_SUCCESS_URL": (None, "otp.E048"),
}
SETTINGS_CHECKS = (
    check_provider,
    check_policy,
    check_challenge_verifier,
    check_limits,
    check_other_settings,
    check_web_pages,
    check_webotp_domain,
)


def test_every_setting_has_a_check():
    assert set(MALFORMED) == set(DEFAULTS)


def test_the_defaults_pass_every_settings_check(settings):
    settings.OTP = {"PROVIDER": "otp.providers.locmem.LocmemProvider"}
    assert [m for check in SETTINGS_CHECKS for m in check()] == []


@pytest.mark.parametrize(("key", "value", "check_id"), [(k, *v) for k, v in MALFORMED.items()])
def test_a_malformed_setting_fails_its_check(settings, key, value, check_id):
    provider = INFOBIP if key == "PROVIDER_OPTIONS" else "otp.providers.locmem.LocmemProvider"
    settings.OTP = {"PROVIDER": provider, "PROVIDER_OPTIONS": dict(INFOBIP_OPTIONS), key: value}
    assert ids(m for check in SETTINGS_CHECKS for m in check()) == [check_id]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("BUDGET_ALERT_PERCENTS", None),
        ("PURPOSES", ["signup", "login"]),
        ("CHANNELS", ["sms"]),
        ("CIRCUIT_FAILURES", None),
        ("PROVIDER_MAX_CONCURRENCY", 0),
        ("PROVIDER_QUEUE_TIMEOUT_SECONDS", None),
        ("VERIFY_FAILURE_MAX_SECONDS", 0),
        ("CONVERSION_ALERT_THRESHOLD", 1),
    ],
)
def test_documented_off_and_edge_values_pass(settings, key, value):
    settings.OTP = {"PROVIDER": "otp.providers.locmem.LocmemProvider", key: value}
    assert check_other_settings() == []


def test_an_open_circuit_needs_its_wait_only_while_the_circuit_is_on(settings):
    settings.OTP = {**settings.OTP, "CIRCUIT_FAILURES": None, "CIRCUIT_OPEN_SECONDS": None}
    assert check_other_settings() == []


def test_a_misspelt_key_warns_with_the_closest_one(settings):
    settings.OTP = {**settings.OTP, "MAX_VERIFY_ATTEMPT": 3}
    (warning,) = check_unknown_keys()
    assert warning.id == "otp.W040" and warning.level == WARNING
    assert "'MAX_VERIFY_ATTEMPT'" in warning.msg and "OTP['MAX_VERIFY_ATTEMPTS']" in str(warning.hint)


def test_an_unknown_key_far_from_every_setting_warns_without_a_guess(settings):
    settings.OTP = {**settings.OTP, "COLOUR": "blue"}
    (warning,) = check_unknown_keys()
    assert "'COLOUR'" in warning.msg and "Did you mean" not in str(warning.hint)


def test_known_keys_do_not_warn(settings):
    settings.OTP = {**settings.OTP, "MAX_VERIFY_ATTEMPTS": 3}
    assert check_unknown_keys() == []


def test_manage_check_shows_the_misspelt_key(settings):
    settings.OTP = {**settings.OTP, "MAX_SENDS_PER_DAYS": 10}
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "otp.W040" in out.getvalue() and "MAX_SENDS_PER_DAY'" in out.getvalue()


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_every_setting_has_a_typed_documented_accessor(name):
    accessor = vars(OtpSettings).get(name)
    assert isinstance(accessor, property)
    assert accessor.fget.__annotations__["return"] not in ("Any", "typing.Any")
    assert accessor.fget.__doc__ and "\n" not in accessor.fget.__doc__.strip()


def test_a_base_template_no_engine_finds_warns(settings):
    settings.OTP = {**settings.OTP, "WEB_BASE_TEMPLATE": "site/bsae.html"}
    (warning,) = check_web_pages()
    assert warning.id == "otp.W048" and warning.level == WARNING and "'site/bsae.html'" in warning.msg


def test_a_base_template_an_engine_finds_passes(settings):
    settings.OTP = {**settings.OTP, "WEB_BASE_TEMPLATE": "admin/base.html"}
    assert check_web_pages() == []

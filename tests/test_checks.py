"""System checks: one test per id, and ``manage.py check`` failing on errors."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from otp.checks import check_policy, check_provider
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
    ],
)
def test_policy_errors(settings, key, value, check_id):
    settings.OTP = {**settings.OTP, key: value}
    assert ids(check_policy()) == [check_id]


def test_manage_check_fails_on_error(settings):
    settings.OTP = {**settings.OTP, "CODE_TTL_SECONDS": 3600}
    with pytest.raises(SystemCheckError, match="otp.E004"):
        call_command("check")


@pytest.mark.django_db
def test_migrations_are_complete():
    call_command("makemigrations", "otp", "--check", "--dry-run", verbosity=0)

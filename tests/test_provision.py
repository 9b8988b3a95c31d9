"""``manage.py otp_provision`` against mocked Infobip: exact requests, every mode and error path."""

from __future__ import annotations

import json
import os
import stat
from io import StringIO
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command, execute_from_command_line

from otp.providers import provisioning
from otp.providers.provisioning import parse_duration, parse_limit, render_duration, update_env_text, write_env
from tests.conftest import infobip_http

KEY = "prov-secret-key-0123456789abcdef"
BASE = "https://xyz.api.infobip.com"
APPS = f"{BASE}/2fa/2/applications"
APP_ID = "0933F3BC087D2A617AC6DCB2EF5B8A61"
MSG_ID = "B628A31410306DDB2BFB0D9CF1F3A3FF"
APP_URL = f"{APPS}/{APP_ID}"
MESSAGES = f"{APP_URL}/messages"
MSG_URL = f"{MESSAGES}/{MSG_ID}"
SEND_URL = f"{BASE}/2fa/2/pin"
PIN_ID = "9C817C6F8AF3D48F9FE553282AFA2B67"

WANTED_APP = {
    "name": "django-otp",
    "enabled": True,
    "configuration": {
        "pinAttempts": 5,
        "allowMultiplePinVerifications": False,
        "pinTimeToLive": "5m",
        "verifyPinLimit": "10/1m",
        "sendPinPerApplicationLimit": "10000/1d",
        "sendPinPerPhoneNumberLimit": "5/1d",
    },
}
WANTED_TEMPLATE = {
    "messageText": "Your verification code is {{pin}}",
    "pinType": "NUMERIC",
    "pinLength": 6,
    "language": "en",
}
LIVE_APP = {"applicationId": APP_ID, **WANTED_APP}
LIVE_TEMPLATE = {"messageId": MSG_ID, "applicationId": APP_ID, "pinPlaceholder": "{{pin}}", **WANTED_TEMPLATE}
OTHER_APP = {"applicationId": "1234567", "name": "someone-else", "enabled": True, "configuration": {}}


@pytest.fixture(autouse=True)
def infobip_settings(settings: Any) -> Any:
    settings.OTP = {
        "PROVIDER": "otp.providers.infobip.InfobipProvider",
        "PROVIDER_OPTIONS": {
            "api_key": KEY,
            "base_url": "xyz.api.infobip.com",
            "connect_timeout": 2,
            "read_timeout": 5,
        },
        "PIN_LENGTH": 6,
        "CODE_TTL_SECONDS": 300,
        "MAX_VERIFY_ATTEMPTS": 5,
    }
    return settings


@pytest.fixture
def configured_ids(settings: Any) -> None:
    settings.OTP["PROVIDER_OPTIONS"].update(application_id=APP_ID, message_id=MSG_ID)


@pytest.fixture
def http() -> Any:
    with infobip_http() as mock:  # every registered answer must be asked for
        yield mock


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("otp_provision", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def fail(*args: str) -> CommandError:
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command("otp_provision", *args, stdout=out, stderr=err)
    for text in (out.getvalue(), err.getvalue(), str(info.value)):
        assert KEY not in text
    assert "\n" not in str(info.value)
    return info.value


def calls(http: Any) -> list[tuple[str, str, Any]]:
    """(method, URL, JSON body) of every request, after checking auth and timeouts on each."""
    seen = []
    for call in http.calls:
        request = call.request
        assert request.headers["Authorization"] == f"App {KEY}"
        assert request.req_kwargs["timeout"] == (2.0, 5.0)
        seen.append((request.method, request.url, json.loads(request.body) if request.body else None))
    return seen


def merged(base: dict[str, Any], **configuration: Any) -> dict[str, Any]:
    return {**base, "configuration": {**base["configuration"], **configuration}}


# -- creating, updating, nothing to do ------------------------------------------------


def test_fresh_create(http):
    http.get(APPS, json=[OTHER_APP])
    http.post(APPS, json=LIVE_APP)
    http.post(MESSAGES, json=LIVE_TEMPLATE)
    out, err = run()
    assert calls(http) == [("GET", APPS, None), ("POST", APPS, WANTED_APP), ("POST", MESSAGES, WANTED_TEMPLATE)]
    assert f"INFOBIP_2FA_APP_ID={APP_ID}\n" in out and f"INFOBIP_2FA_MSG_ID={MSG_ID}\n" in out
    assert f"Application 'django-otp' {APP_ID}: created" in out and '  pinTimeToLive: "5m"' in out
    assert err == ""


def test_create_accepts_201(http):
    http.get(APPS, json=[])
    http.post(APPS, json=LIVE_APP, status=201)
    http.post(MESSAGES, json=LIVE_TEMPLATE)
    assert f"INFOBIP_2FA_APP_ID={APP_ID}" in run()[0]


def test_update_of_drifted_app_and_template(http, configured_ids):
    drifted_app = merged(
        LIVE_APP, pinAttempts=10, allowMultiplePinVerifications=True, pinTimeToLive="15m", verifyPinLimit="10/60s"
    )  # same limit, other spelling: not a change
    drifted_template = {**LIVE_TEMPLATE, "messageText": "Your pin is {{pin}}", "pinLength": 4}
    email_template = {"messageId": "EMAIL1", "emailTemplateId": 42, "pinType": "NUMERIC", "pinLength": 4}
    http.get(APPS, json=[OTHER_APP, drifted_app])
    http.put(APP_URL, json=LIVE_APP)
    http.get(MESSAGES, json=[email_template, drifted_template])
    http.put(MSG_URL, json=LIVE_TEMPLATE)
    out, _ = run()
    assert calls(http) == [
        ("GET", APPS, None),
        ("PUT", APP_URL, WANTED_APP),
        ("GET", MESSAGES, None),
        ("PUT", MSG_URL, WANTED_TEMPLATE),
    ]
    assert "pinAttempts: 10 -> 5" in out and 'pinTimeToLive: "15m" -> "5m"' in out
    assert "allowMultiplePinVerifications: true -> false" in out and "verifyPinLimit" not in out
    assert 'messageText: "Your pin is {{pin}}" -> "Your verification code is {{pin}}"' in out
    assert "pinLength: 4 -> 6" in out and "updated" in out


def test_missing_configuration_fields_count_as_infobip_defaults(http):
    http.get(APPS, json=[{"applicationId": APP_ID, "name": "django-otp"}])
    http.put(APP_URL, json=LIVE_APP)
    http.get(MESSAGES, json=[LIVE_TEMPLATE])
    out, _ = run()
    assert "pinAttempts: 10 -> 5" in out and 'sendPinPerPhoneNumberLimit: "3/1d" -> "5/1d"' in out
    assert 'verifyPinLimit: "1/3s" -> "10/1m"' in out  # Infobip's default is too tight for retyping


def test_up_to_date_makes_only_gets(http):
    tolerant = merged(
        LIVE_APP, pinTimeToLive="300s", sendPinPerApplicationLimit="10000/24h", sendPinPerPhoneNumberLimit="5/d"
    )
    template = {k: v for k, v in LIVE_TEMPLATE.items() if k != "language"}  # "en" is the default
    http.get(APPS, json=[tolerant])
    http.get(MESSAGES, json=[template])
    out, _ = run()
    assert [c[0] for c in calls(http)] == ["GET", "GET"]
    assert "Infobip is up to date." in out and f"INFOBIP_2FA_MSG_ID={MSG_ID}" in out


def test_second_run_changes_nothing(http, tmp_path):
    env = tmp_path / ".env"
    http.get(APPS, json=[])
    http.post(APPS, json=LIVE_APP)
    http.post(MESSAGES, json=LIVE_TEMPLATE)
    run("--write-env", str(env))
    app_body, template_body = calls(http)[1][2], calls(http)[2][2]
    first = env.read_bytes()

    with infobip_http() as again:  # Infobip now holds exactly what the first run sent
        again.get(APPS, json=[{"applicationId": APP_ID, **app_body}])
        again.get(MESSAGES, json=[{"messageId": MSG_ID, **template_body}])
        out, _ = run("--write-env", str(env))
        assert [c.request.method for c in again.calls] == ["GET", "GET"]
    assert "Infobip is up to date." in out and f"Already current: {env}" in out
    assert env.read_bytes() == first


def test_configured_template_wins_over_text_match(http, settings):
    settings.OTP["PROVIDER_OPTIONS"].update(application_id=APP_ID, message_id="CONFIGURED")
    same_text = {**LIVE_TEMPLATE, "messageId": "SAMETEXT"}
    configured = {**LIVE_TEMPLATE, "messageId": "CONFIGURED", "pinLength": 8}
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[same_text, configured])
    http.put(f"{MESSAGES}/CONFIGURED", json=configured)
    out, _ = run()
    assert calls(http)[-1] == ("PUT", f"{MESSAGES}/CONFIGURED", WANTED_TEMPLATE)
    assert "INFOBIP_2FA_MSG_ID=CONFIGURED" in out


def test_message_id_of_another_application_is_ignored(http, settings):
    settings.OTP["PROVIDER_OPTIONS"].update(application_id="OLDAPP", message_id=MSG_ID)
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[{**LIVE_TEMPLATE, "messageText": "Other {{pin}}"}])
    http.post(MESSAGES, json={**LIVE_TEMPLATE, "messageId": "NEWMSG"})
    assert "INFOBIP_2FA_MSG_ID=NEWMSG" in run()[0]


def test_duplicate_names_need_the_configured_id(http, settings):
    twin = {**LIVE_APP, "applicationId": "TWIN"}
    http.get(APPS, json=[twin, LIVE_APP])
    assert "several Infobip applications are named 'django-otp'" in str(fail())
    settings.OTP["PROVIDER_OPTIONS"]["application_id"] = APP_ID
    http.get(MESSAGES, json=[LIVE_TEMPLATE])
    assert f"INFOBIP_2FA_APP_ID={APP_ID}" in run()[0]


# -- dry run -------------------------------------------------------------------


def test_dry_run_create_writes_nothing(http, tmp_path):
    env = tmp_path / ".env"
    env.write_text("KEEP=1\n")
    http.get(APPS, json=[])
    out, _ = run("--dry-run", "--write-env", str(env))
    assert calls(http) == [("GET", APPS, None)]
    assert "Application 'django-otp': would create" in out and "SMS template: would create" in out
    assert '  messageText: "Your verification code is {{pin}}"' in out
    assert "INFOBIP_2FA_APP_ID" not in out and "Dry run: nothing was changed." in out
    assert env.read_text() == "KEEP=1\n"


def test_dry_run_update_lists_fields_and_only_gets(http):
    http.get(APPS, json=[merged(LIVE_APP, pinAttempts=3)])
    http.get(MESSAGES, json=[{**LIVE_TEMPLATE, "senderId": "OLD"}])
    out, _ = run("--dry-run", "--sender-id", "ACME")
    assert [c[0] for c in calls(http)] == ["GET", "GET"]
    assert f"Application 'django-otp' {APP_ID}: would update" in out and "pinAttempts: 3 -> 5" in out
    assert f"SMS template {MSG_ID}: would update" in out and 'senderId: "OLD" -> "ACME"' in out


def test_dry_run_with_nothing_to_do(http):
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_TEMPLATE])
    assert "Infobip is up to date." in run("--dry-run")[0]


# -- check -------------------------------------------------------------------------


def test_check_compliant(http, configured_ids):
    http.get(APP_URL, json=LIVE_APP)
    http.get(MSG_URL, json=LIVE_TEMPLATE)
    out, _ = run("--check")
    assert calls(http) == [("GET", APP_URL, None), ("GET", MSG_URL, None)]
    assert "complies" in out


def test_check_accepts_stricter_settings(http, configured_ids):
    http.get(APP_URL, json=merged(LIVE_APP, pinTimeToLive="120000ms", pinAttempts=3))
    http.get(MSG_URL, json={**LIVE_TEMPLATE, "messageText": "{{pin}}", "senderId": "X"})
    assert "complies" in run("--check")[0]


def test_check_lists_every_looser_setting(http, configured_ids):
    http.get(APP_URL, json=merged(LIVE_APP, pinTimeToLive="15m", pinAttempts=10, allowMultiplePinVerifications=True))
    http.get(MSG_URL, json={**LIVE_TEMPLATE, "pinLength": 4, "pinType": "ALPHANUMERIC", "messageText": "Hi"})
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command("otp_provision", "--check", stdout=out, stderr=err)
    assert info.value.returncode == 2 and "6 differences" in str(info.value)
    listed = out.getvalue()
    for expected in (
        "pinTimeToLive is 15m, longer than the local CODE_TTL_SECONDS (300s)",
        "pinAttempts is 10, more than the local MAX_VERIFY_ATTEMPTS (5)",
        "allowMultiplePinVerifications is true",
        "pinLength is 4, the local PIN_LENGTH is 6",
        "pinType is ALPHANUMERIC, not NUMERIC",
        "messageText has no {{pin}} placeholder",
    ):
        assert f"- {expected}" in listed
    assert [c[0] for c in calls(http)] == ["GET", "GET"]


@pytest.mark.parametrize("live", ["1/3s", "100/1m", None])
def test_check_reports_a_verify_limit_other_than_provisionings_either_way(http, configured_ids, live):
    app = merged(LIVE_APP, verifyPinLimit=live)
    if live is None:  # left out: Infobip's default, 1/3s
        del app["configuration"]["verifyPinLimit"]
    http.get(APP_URL, json=app)
    http.get(MSG_URL, json=LIVE_TEMPLATE)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command("otp_provision", "--check", stdout=out, stderr=err)
    assert info.value.returncode == 2 and "1 difference)" in str(info.value)
    assert f"- verifyPinLimit is {live or '1/3s'}, provisioning sets 10/1m" in out.getvalue()


def test_check_accepts_the_same_verify_limit_written_otherwise(http, configured_ids):
    http.get(APP_URL, json=merged(LIVE_APP, verifyPinLimit="10/60s"))
    http.get(MSG_URL, json=LIVE_TEMPLATE)
    assert "complies" in run("--check")[0]


def test_check_longer_pin_is_still_a_difference(http, configured_ids):
    http.get(APP_URL, json=LIVE_APP)
    http.get(MSG_URL, json={**LIVE_TEMPLATE, "pinLength": 8})
    assert "1 difference)" in str(fail("--check"))


def test_check_missing_defaults_are_looser(http, configured_ids):
    http.get(APP_URL, json={"applicationId": APP_ID, "name": "django-otp"})  # Infobip's defaults apply
    http.get(MSG_URL, json=LIVE_TEMPLATE)
    assert fail("--check").returncode == 2


def test_check_by_name_without_configured_ids(http):
    http.get(APPS, json=[OTHER_APP, LIVE_APP])
    http.get(MESSAGES, json=[LIVE_TEMPLATE])
    assert "complies" in run("--check")[0]


@pytest.mark.parametrize(
    ("apps", "messages", "expected"),
    [
        ([OTHER_APP], None, "no Infobip application is named 'django-otp'"),
        ([LIVE_APP], [], f"application {APP_ID} has no SMS template with the expected text"),
    ],
)
def test_check_missing_things_are_differences(http, apps, messages, expected):
    http.get(APPS, json=apps)
    if messages is not None:
        http.get(MESSAGES, json=messages)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command("otp_provision", "--check", stdout=out, stderr=err)
    assert info.value.returncode == 2 and f"- {expected}" in out.getvalue()


@pytest.mark.parametrize("missing", ["application", "template"])
def test_check_configured_ids_that_do_not_exist(http, configured_ids, missing):
    not_found = {"status": 404, "json": {"requestError": {"serviceException": {"messageId": "NOT_FOUND"}}}}
    if missing == "application":
        http.get(APP_URL, **not_found)
    else:
        http.get(APP_URL, json=LIVE_APP)
        http.get(MSG_URL, **not_found)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command("otp_provision", "--check", stdout=out, stderr=err)
    assert info.value.returncode == 2 and "does not exist" in out.getvalue()


def test_check_with_a_wrong_base_url_path_is_an_error_not_a_finding(http):
    http.get(APPS, status=404, body="<html>no such path</html>")
    error = fail("--check")
    assert error.returncode == 1 and f"list applications answered 404 [{BASE}]" in str(error)


# -- .env ------------------------------------------------------------------------

ENV_BEFORE = (
    b"# Infobip\n"
    b"INFOBIP_API_KEY=abc  # keep me\n"
    b"INFOBIP_2FA_APP_ID=OLDAPP\n"
    b"\n"
    b"   # INFOBIP_2FA_MSG_ID=commented-out stays\n"
    b"export INFOBIP_2FA_MSG_ID = OLDMSG\r\n"
    b"UNICODE=\xc3\xa9t\xc3\xa9\n"
    b"LAST=no-newline"
)


def test_update_env_text_replaces_only_our_lines():
    new = update_env_text(ENV_BEFORE, {"INFOBIP_2FA_APP_ID": "A1", "INFOBIP_2FA_MSG_ID": "M1"})
    assert new == ENV_BEFORE.replace(b"INFOBIP_2FA_APP_ID=OLDAPP", b"INFOBIP_2FA_APP_ID=A1").replace(
        b"export INFOBIP_2FA_MSG_ID = OLDMSG", b"export INFOBIP_2FA_MSG_ID=M1"
    )


def test_update_env_text_appends_missing_lines():
    assert update_env_text(b"# only a comment\r\nA=1", {"INFOBIP_2FA_APP_ID": "A1", "INFOBIP_2FA_MSG_ID": "M1"}) == (
        b"# only a comment\r\nA=1\r\nINFOBIP_2FA_APP_ID=A1\r\nINFOBIP_2FA_MSG_ID=M1\r\n"
    )
    assert update_env_text(b"", {"INFOBIP_2FA_APP_ID": "A1"}) == b"INFOBIP_2FA_APP_ID=A1\n"
    # A key that merely starts with ours is another key.
    assert update_env_text(b"INFOBIP_2FA_APP_ID_OLD=x\n", {"INFOBIP_2FA_APP_ID": "A1"}) == (
        b"INFOBIP_2FA_APP_ID_OLD=x\nINFOBIP_2FA_APP_ID=A1\n"
    )


def test_write_env_through_the_command(http, tmp_path):
    env = tmp_path / ".env"
    env.write_bytes(ENV_BEFORE)
    env.chmod(0o640)
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_TEMPLATE])
    out, _ = run("--write-env", str(env))
    assert f"Wrote {env}" in out
    assert env.read_bytes() == update_env_text(ENV_BEFORE, {"INFOBIP_2FA_APP_ID": APP_ID, "INFOBIP_2FA_MSG_ID": MSG_ID})
    assert stat.S_IMODE(env.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == [".env"]  # no temporary file left behind


def test_write_env_creates_a_private_file(tmp_path):
    env = tmp_path / "new.env"
    assert write_env(env, {"INFOBIP_2FA_APP_ID": "A1"}) is True
    assert env.read_text() == "INFOBIP_2FA_APP_ID=A1\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


def test_write_env_keeps_a_symlink(tmp_path):
    real = tmp_path / "real.env"
    real.write_text("A=1\n")
    link = tmp_path / ".env"
    link.symlink_to(real)
    write_env(link, {"INFOBIP_2FA_APP_ID": "A1"})
    assert link.is_symlink() and real.read_text() == "A=1\nINFOBIP_2FA_APP_ID=A1\n"


def test_write_env_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("A=1\n")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(provisioning.os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_env(env, {"INFOBIP_2FA_APP_ID": "A1"})
    assert env.read_text() == "A=1\n" and os.listdir(tmp_path) == [".env"]


def test_write_env_unwritable_directory_is_one_line(http, tmp_path):
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_TEMPLATE])
    error = fail("--write-env", str(tmp_path / "missing-dir" / ".env"))
    assert str(error).startswith("cannot write ") and "No such file or directory" in str(error)


def test_write_env_refuses_odd_ids(tmp_path):
    with pytest.raises(provisioning.ProvisioningError):
        write_env(tmp_path / ".env", {"INFOBIP_2FA_APP_ID": "A1\nEVIL=1"})
    assert not (tmp_path / ".env").exists()


# -- overrides ------------------------------------------------------------------


def test_overrides_reach_infobip(http):
    http.get(APPS, json=[])
    http.post(APPS, json={**LIVE_APP, "name": "shop"})
    http.post(MESSAGES, json=LIVE_TEMPLATE)
    run(
        "--name",
        "shop",
        "--pin-ttl",
        "2m",
        "--pin-attempts",
        "3",
        "--verify-pin-limit",
        "1/10s",
        "--send-pin-per-application-limit",
        "500/12h",
        "--send-pin-per-phone-number-limit",
        "2/1h",
        "--message-text",
        "ACME code: {{pin}}",
        "--pin-length",
        "6",
        "--sender-id",
        "ACME",
        "--language",
        "pt_br",
    )
    assert calls(http)[1:] == [
        (
            "POST",
            APPS,
            {
                "name": "shop",
                "enabled": True,
                "configuration": {
                    "pinAttempts": 3,
                    "allowMultiplePinVerifications": False,
                    "pinTimeToLive": "2m",
                    "verifyPinLimit": "1/10s",
                    "sendPinPerApplicationLimit": "500/12h",
                    "sendPinPerPhoneNumberLimit": "2/1h",
                },
            },
        ),
        (
            "POST",
            MESSAGES,
            {
                "messageText": "ACME code: {{pin}}",
                "pinType": "NUMERIC",
                "pinLength": 6,
                "language": "pt_br",
                "senderId": "ACME",
            },
        ),
    ]


def test_ttl_that_is_not_whole_minutes_is_rendered_in_seconds(http, settings):
    settings.OTP["CODE_TTL_SECONDS"] = 90
    http.get(APPS, json=[])
    http.post(APPS, json=LIVE_APP)
    http.post(MESSAGES, json=LIVE_TEMPLATE)
    run()
    assert calls(http)[1][2]["configuration"]["pinTimeToLive"] == "90s"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pin-ttl", "10m"], "longer than the local CODE_TTL_SECONDS (300s)"),
        (["--pin-ttl", "301s"], "longer than the local"),
        (["--pin-ttl", "1h"], "longer than the local"),
        (["--pin-ttl", "0s"], "longer than zero"),
        (["--pin-ttl", "5 minutes"], "is not a duration"),
        (["--pin-attempts", "6"], "MAX_VERIFY_ATTEMPTS (5)"),
        (["--pin-attempts", "0"], "from 1 to"),
        (["--pin-length", "4"], "must equal the local PIN_LENGTH (6)"),
        (["--pin-length", "8"], "must equal the local PIN_LENGTH (6)"),
        (["--message-text", "Your code"], "must contain {{pin}}"),
        (["--message-text", "Hi {{name}}, {{pin}}"], "not {{name}}"),
        (["--language", "pt-br"], "is not one of Infobip's"),
        (["--verify-pin-limit", "3"], "is not a limit"),
        (["--verify-pin-limit", "1/2d"], "window longer than Infobip allows"),
        (["--send-pin-per-phone-number-limit", "0/1d"], "at least one request"),
        (["--sender-id", " "], "sender ID"),
        (["--name", " "], "name must not be empty"),
        (["--check", "--dry-run"], "--check cannot be combined"),
        (["--check", "--write-env", "x"], "--check cannot be combined"),
        (["--dry-run", "--send-test-pin", "+14155552671"], "cannot be combined with --dry-run"),
        (["--send-test-pin", "12345"], "international format"),
        (["--send-test-pin", "+1 555"], "not a valid phone number"),
    ],
)
def test_refused_before_any_request(http, args, message):
    assert message in str(fail(*args))
    assert len(http.calls) == 0


def test_invalid_local_policy_is_refused(http, settings):
    settings.OTP["CODE_TTL_SECONDS"] = 3600
    assert "fix the OTP settings first" in str(fail())


# -- test PIN ---------------------------------------------------------------------


def test_send_test_pin(http):
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_TEMPLATE])
    http.post(SEND_URL, json={"pinId": PIN_ID, "to": "14155552671", "smsStatus": "MESSAGE_SENT"})
    out, err = run("--send-test-pin", "+1 (415) 555-2671")
    assert calls(http)[-1] == ("POST", SEND_URL, {"applicationId": APP_ID, "messageId": MSG_ID, "to": "14155552671"})
    assert "Test PIN sent to +1********71." in out and PIN_ID not in out + err


def test_send_test_pin_not_delivered(http):
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_TEMPLATE])
    http.post(SEND_URL, json={"pinId": PIN_ID, "smsStatus": "MESSAGE_NOT_SENT"})
    error = fail("--send-test-pin", "+14155552671")
    assert "did not send it" in str(error) and PIN_ID not in str(error)


def test_send_test_pin_after_a_create_uses_the_new_ids(http):
    http.get(APPS, json=[])
    http.post(APPS, json=LIVE_APP)
    http.post(MESSAGES, json=LIVE_TEMPLATE)
    http.post(SEND_URL, json={"pinId": PIN_ID})
    run("--send-test-pin", "+14155552671")
    assert calls(http)[-1][2] == {"applicationId": APP_ID, "messageId": MSG_ID, "to": "14155552671"}


# -- credentials and errors ------------------------------------------------------------


def test_api_key_from_another_environment_variable(http, monkeypatch, settings):
    settings.OTP["PROVIDER_OPTIONS"]["api_key"] = "unused"
    monkeypatch.setenv("PROD_INFOBIP_KEY", KEY)
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_TEMPLATE])
    run("--api-key-env", "PROD_INFOBIP_KEY")
    calls(http)  # asserts the header


def test_base_url_option_overrides_settings(settings):
    settings.OTP["PROVIDER_OPTIONS"]["base_url"] = "wrong.example"
    with infobip_http() as mock:
        mock.get("http://127.0.0.1:18081/2fa/2/applications", json=[LIVE_APP])
        mock.get(f"http://127.0.0.1:18081/2fa/2/applications/{APP_ID}/messages", json=[LIVE_TEMPLATE])
        assert "up to date" in run("--base-url", "http://127.0.0.1:18081")[0]


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        ({"api_key": ""}, [], "no Infobip API key"),
        ({"base_url": ""}, [], "no Infobip base URL"),
        ({}, ["--api-key-env", "SURELY_UNSET_VARIABLE_42"], "SURELY_UNSET_VARIABLE_42 is empty or unset"),
        ({}, ["--base-url", "http://xyz.api.infobip.com"], "plain http"),
        ({}, ["--base-url", "ftp://host"], "is not an http(s) URL"),
    ],
)
def test_configuration_errors(http, settings, change, args, message):
    settings.OTP["PROVIDER_OPTIONS"].update(change)
    assert message in str(fail(*args))
    assert len(http.calls) == 0


ERROR_BODY = {"requestError": {"serviceException": {"messageId": "X_ERR", "text": f"bad {KEY}"}}}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            {"status": 401, "json": {"requestError": {"serviceException": {"messageId": "UNAUTHORIZED"}}}},
            "answered 401 (UNAUTHORIZED): check the API key and its 2FA scopes",
        ),
        ({"status": 403, "json": ERROR_BODY}, "answered 403 (X_ERR): check the API key"),
        ({"status": 404, "body": "<html>not here</html>"}, "list applications answered 404"),
        ({"status": 400, "json": ERROR_BODY}, "answered 400 (X_ERR)"),
        ({"status": 429, "json": ERROR_BODY}, "answered 429"),
        ({"status": 500, "body": "oops"}, "answered 500"),
        ({"status": 503, "json": ERROR_BODY}, "answered 503"),
        ({"status": 302, "headers": {"Location": "https://evil.example/"}}, "answered 302"),
        ({"status": 200, "body": "<html>captive portal</html>"}, "non-JSON body"),
        ({"status": 200, "json": {"applications": []}}, "non-list body"),
        ({"status": 200, "json": ["app"]}, "list of non-objects"),
        ({"body": requests.ConnectTimeout("connect")}, "timed out (ConnectTimeout)"),
        ({"body": requests.ReadTimeout("read")}, "timed out (ReadTimeout)"),
        ({"body": requests.ConnectionError(f"refused {KEY}")}, "failed: ConnectionError"),
    ],
)
def test_answers_to_the_first_read_are_one_clear_line(http, answer, message):
    http.get(APPS, **answer)
    error = fail()
    assert message in str(error) and error.returncode == 1
    assert len(http.calls) == 1  # no retries after the request went out, no redirects


@pytest.mark.parametrize(
    ("failing", "message"),
    [
        ("create application", "Infobip create application answered 400 (X_ERR)"),
        ("create template", f"Infobip create template in application {APP_ID} answered 500"),
    ],
)
def test_failing_writes(http, failing, message):
    http.get(APPS, json=[])
    if failing == "create application":
        http.post(APPS, status=400, json=ERROR_BODY)
    else:
        http.post(APPS, json=LIVE_APP)
        http.post(MESSAGES, status=500, json=ERROR_BODY)
    assert message in str(fail())


@pytest.mark.parametrize("answer", [{"name": "django-otp"}, {"applicationId": "A1\nEVIL=1"}, {"applicationId": 7}])
def test_created_application_without_usable_id(http, answer):
    http.get(APPS, json=[])
    http.post(APPS, json=answer)
    assert "has no usable applicationId" in str(fail())


def test_failing_updates(http, configured_ids):
    http.get(APPS, json=[merged(LIVE_APP, pinAttempts=9)])
    http.put(APP_URL, status=404, json={"requestError": {"serviceException": {"messageId": "NOT_FOUND"}}})
    assert f"update application {APP_ID} answered 404 (NOT_FOUND)" in str(fail())


def test_command_line_error_is_one_stderr_line_without_traceback(http, capsys, settings):
    http.get(APPS, status=401, json={"requestError": {"serviceException": {"messageId": "UNAUTHORIZED"}}})
    with pytest.raises(SystemExit) as info:
        execute_from_command_line(["manage.py", "otp_provision"])
    captured = capsys.readouterr()
    assert info.value.code == 1
    assert captured.err == (
        "CommandError: Infobip list applications answered 401 (UNAUTHORIZED): "
        f"check the API key and its 2FA scopes [{BASE}]\n"
    )
    assert KEY not in captured.out + captured.err


def test_check_exit_status_from_the_command_line(http, capsys, configured_ids):
    http.get(APP_URL, json=merged(LIVE_APP, pinAttempts=10))
    http.get(MSG_URL, json=LIVE_TEMPLATE)
    with pytest.raises(SystemExit) as info:
        execute_from_command_line(["manage.py", "otp_provision", "--check"])
    captured = capsys.readouterr()
    assert info.value.code == 2 and "- pinAttempts is 10" in captured.out
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_the_key_never_appears_on_success_paths(http, tmp_path):
    http.get(APPS, json=[])
    http.post(APPS, json=LIVE_APP)
    http.post(MESSAGES, json=LIVE_TEMPLATE)
    http.post(SEND_URL, json={"pinId": PIN_ID})
    out, err = run("--write-env", str(tmp_path / ".env"), "--send-test-pin", "+14155552671")
    assert KEY not in out + err + (tmp_path / ".env").read_text()


# -- formats (reference §3.1) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [("5m", 300_000), ("300s", 300_000), ("m", 60_000), ("250ms", 250), ("2h", 7_200_000), ("1d", 86_400_000)],
)
def test_parse_duration(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "5", "5 m", "-5m", "5M", "1.5m", "5min", None, 300])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parse_limit():
    assert parse_limit("1/3s") == (1, 3_000)
    assert parse_limit("3/d") == parse_limit("3/24h") == (3, 86_400_000)
    for bad in ("3", "/1d", "1/", "a/1d", "1/1x", None):
        with pytest.raises(ValueError):
            parse_limit(bad)


@pytest.mark.parametrize(("seconds", "text"), [(300, "5m"), (600, "10m"), (90, "90s"), (1, "1s")])
def test_render_duration(seconds, text):
    assert render_duration(seconds) == text


# -- voice template options -------------------------------------------------------------


def test_voice_options_are_set_on_the_template(http):
    voice = {"language": "de", "voiceName": "Hans", "speechRate": 0.8, "repeatDTMF": "1#"}
    http.get(APPS, json=[])
    http.post(APPS, json=LIVE_APP)
    http.post(MESSAGES, json={**LIVE_TEMPLATE, **voice})
    run("--language", "de", "--voice-name", "Hans", "--speech-rate", "0.8", "--repeat-dtmf", "1#")
    assert calls(http)[-1] == ("POST", MESSAGES, {**WANTED_TEMPLATE, **voice})


@pytest.mark.parametrize(
    ("option", "value"),
    [("--speech-rate", "3"), ("--speech-rate", "0.1"), ("--repeat-dtmf", "press one"), ("--voice-name", "<script>")],
)
def test_bad_voice_options_are_refused_before_any_call(http, option, value):
    error = fail(option, value)
    assert option.lstrip("-").split("-")[0] in str(error).lower() or "refused" in str(error)
    assert len(http.calls) == 0


# -- origin-bound codes (WEBOTP_DOMAIN) ---------------------------------------------------

VOICE_ID = "9C815F8AF3328"
VOICE_URL = f"{MESSAGES}/{VOICE_ID}"
ORIGIN_TEXT = "Your verification code is below.\n\n@example.com #{{pin}}"
WANTED_SMS = {"messageText": ORIGIN_TEXT, "pinType": "NUMERIC", "pinLength": 6}
WANTED_VOICE = WANTED_TEMPLATE  # the plain text, with the voice fields
LIVE_SMS = {"messageId": MSG_ID, "applicationId": APP_ID, "pinPlaceholder": "{{pin}}", **WANTED_SMS}
LIVE_VOICE = {**LIVE_TEMPLATE, "messageId": VOICE_ID}


@pytest.fixture
def webotp(settings: Any) -> str:
    settings.OTP["WEBOTP_DOMAIN"] = "example.com"
    return "example.com"


@pytest.fixture
def all_ids(settings: Any, webotp: str) -> None:
    settings.OTP["PROVIDER_OPTIONS"].update(application_id=APP_ID, message_id=MSG_ID, voice_message_id=VOICE_ID)


def test_webotp_creates_an_origin_bound_sms_template_and_a_voice_template(http, webotp, tmp_path):
    env = tmp_path / ".env"
    http.get(APPS, json=[])
    http.post(APPS, json=LIVE_APP)
    http.post(MESSAGES, json=LIVE_SMS)
    http.post(MESSAGES, json=LIVE_VOICE)
    out, _ = run("--write-env", str(env))
    assert calls(http)[2:] == [("POST", MESSAGES, WANTED_SMS), ("POST", MESSAGES, WANTED_VOICE)]
    assert f"SMS template {MSG_ID}: created" in out and f"Voice template {VOICE_ID}: created" in out
    assert '  messageText: "Your verification code is below.\\n\\n@example.com #{{pin}}"' in out
    assert f"INFOBIP_2FA_VOICE_MSG_ID={VOICE_ID}\n" in out
    assert env.read_text() == (
        f"INFOBIP_2FA_APP_ID={APP_ID}\nINFOBIP_2FA_MSG_ID={MSG_ID}\nINFOBIP_2FA_VOICE_MSG_ID={VOICE_ID}\n"
    )


def test_webotp_voice_options_go_on_the_voice_template_only(http, webotp):
    http.get(APPS, json=[])
    http.post(APPS, json=LIVE_APP)
    http.post(MESSAGES, json=LIVE_SMS)
    http.post(MESSAGES, json=LIVE_VOICE)
    run("--sender-id", "ACME", "--language", "de", "--voice-name", "Hans", "--repeat-dtmf", "1#")
    assert calls(http)[2][2] == {**WANTED_SMS, "senderId": "ACME"}
    assert calls(http)[3][2] == {
        **WANTED_VOICE,
        "language": "de",
        "voiceName": "Hans",
        "repeatDTMF": "1#",
        "senderId": "ACME",
    }


def test_webotp_second_run_changes_nothing(http, webotp):
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_VOICE, LIVE_SMS])
    out, _ = run()
    assert [c[0] for c in calls(http)] == ["GET", "GET"] and "Infobip is up to date." in out
    assert f"INFOBIP_2FA_MSG_ID={MSG_ID}" in out and f"INFOBIP_2FA_VOICE_MSG_ID={VOICE_ID}" in out


def test_turning_webotp_on_rewrites_the_configured_template_and_adds_a_voice_one(http, configured_ids, webotp):
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_TEMPLATE])
    http.put(MSG_URL, json=LIVE_SMS)
    http.post(MESSAGES, json=LIVE_VOICE)
    out, _ = run()
    assert calls(http)[2:] == [("PUT", MSG_URL, WANTED_SMS), ("POST", MESSAGES, WANTED_VOICE)]
    assert f'messageText: "Your verification code is {{{{pin}}}}" -> {json.dumps(ORIGIN_TEXT)}' in out


def test_turning_webotp_on_without_ids_keeps_the_plain_template_for_calls(http, webotp):
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_TEMPLATE])
    http.post(MESSAGES, json={**LIVE_SMS, "messageId": "NEWSMS"})
    out, _ = run()
    assert calls(http)[2:] == [("POST", MESSAGES, WANTED_SMS)]
    assert "INFOBIP_2FA_MSG_ID=NEWSMS" in out and f"INFOBIP_2FA_VOICE_MSG_ID={MSG_ID}" in out
    assert f"Voice template {MSG_ID}: up to date" in out


def test_a_voice_id_naming_the_sms_template_is_never_the_voice_template(http, settings, webotp):
    settings.OTP["PROVIDER_OPTIONS"].update(application_id=APP_ID, message_id=MSG_ID, voice_message_id=MSG_ID)
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_SMS])
    http.post(MESSAGES, json=LIVE_VOICE)
    out, _ = run()
    assert calls(http)[2:] == [("POST", MESSAGES, WANTED_VOICE)]
    assert f"INFOBIP_2FA_MSG_ID={MSG_ID}" in out and f"INFOBIP_2FA_VOICE_MSG_ID={VOICE_ID}" in out


def test_a_configured_voice_template_is_kept_in_line_without_webotp(http, settings):
    settings.OTP["PROVIDER_OPTIONS"].update(application_id=APP_ID, message_id=MSG_ID, voice_message_id=VOICE_ID)
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_TEMPLATE, {**LIVE_VOICE, "pinLength": 4}])
    http.put(VOICE_URL, json=LIVE_VOICE)
    out, _ = run()
    assert calls(http)[2:] == [("PUT", VOICE_URL, WANTED_VOICE)]
    assert "pinLength: 4 -> 6" in out and f"INFOBIP_2FA_VOICE_MSG_ID={VOICE_ID}" in out


def test_webotp_dry_run(http, webotp):
    http.get(APPS, json=[])
    out, _ = run("--dry-run")
    assert "SMS template: would create" in out and "Voice template: would create" in out
    assert "INFOBIP_2FA" not in out


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("ACME: your code is below.", "ACME: your code is below.\n\n@example.com #{{pin}}"),
        ("ACME: your code is below.\n\n@example.com #{{pin}}", "ACME: your code is below.\n\n@example.com #{{pin}}"),
        ("ACME: code below.\n@example.com #{{pin}}\n", "ACME: code below.\n\n@example.com #{{pin}}"),
    ],
)
def test_webotp_custom_message_text_gets_the_origin_line(http, webotp, text, sent):
    http.get(APPS, json=[])
    http.post(APPS, json=LIVE_APP)
    http.post(MESSAGES, json=LIVE_SMS)
    http.post(MESSAGES, json=LIVE_VOICE)
    run("--message-text", text, "--voice-message-text", "ACME code: {{pin}}")
    assert calls(http)[2][2]["messageText"] == sent
    assert calls(http)[3][2]["messageText"] == "ACME code: {{pin}}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--message-text", "Your code is {{pin}}"], "must not contain {{pin}}: provisioning appends the line"),
        (["--message-text", "Code below.\n\n@other.example #{{pin}}"], "holds the origin line '@other.example"),
        (["--message-text", "@example.com #{{pin}}"], "needs a human-readable line"),
        (["--message-text", "Hi {{name}}, code below."], "not {{name}}"),
        (["--voice-message-text", "Code {{pin}}\n@example.com #{{pin}}"], "must not hold an origin line"),
        (["--voice-message-text", "Your code"], "voice message text must contain {{pin}}"),
    ],
)
def test_webotp_refused_texts(http, webotp, args, message):
    assert message in str(fail(*args))
    assert len(http.calls) == 0


def test_a_voice_text_without_a_voice_template_is_refused(http):
    assert "needs a voice template of its own" in str(fail("--voice-message-text", "Code {{pin}}"))


@pytest.mark.parametrize("domain", ["https://example.com", "example.com:443"])
def test_an_invalid_domain_is_refused_before_any_request(http, settings, domain):
    settings.OTP["WEBOTP_DOMAIN"] = domain
    error = fail()
    assert f"fix the OTP settings first: OTP['WEBOTP_DOMAIN'] = {domain!r} is not a bare host" in str(error)
    assert len(http.calls) == 0


def test_webotp_check_compliant(http, all_ids):
    http.get(APP_URL, json=LIVE_APP)
    http.get(MSG_URL, json=LIVE_SMS)
    http.get(VOICE_URL, json=LIVE_VOICE)
    assert "complies" in run("--check")[0]
    assert [c[1] for c in calls(http)] == [APP_URL, MSG_URL, VOICE_URL]


def not_compliant(*args: str) -> list[str]:
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command("otp_provision", "--check", *args, stdout=out, stderr=err)
    assert info.value.returncode == 2
    return [line[2:] for line in out.getvalue().splitlines() if line.startswith("- ")]


def test_webotp_check_reports_an_sms_template_without_the_origin_line(http, all_ids):
    http.get(APP_URL, json=LIVE_APP)
    http.get(MSG_URL, json={**LIVE_SMS, "messageText": "Your code is {{pin}}\n\n@example.org #{{pin}}"})
    http.get(VOICE_URL, json=LIVE_VOICE)
    assert not_compliant() == [
        "messageText does not end with the line @example.com #{{pin}}: browsers will not offer the code on example.com"
    ]


def test_webotp_check_reports_a_voice_template_carrying_the_origin_line(http, all_ids):
    http.get(APP_URL, json=LIVE_APP)
    http.get(MSG_URL, json=LIVE_SMS)
    http.get(VOICE_URL, json={**LIVE_VOICE, "messageText": ORIGIN_TEXT, "pinLength": 4})
    assert not_compliant() == [
        "voice template: pinLength is 4, the local PIN_LENGTH is 6",
        "voice template: messageText holds the origin line @example.com #{{pin}}, which calls read out",
    ]


def test_webotp_check_reports_calls_sharing_the_sms_template(http, settings, webotp):
    settings.OTP["PROVIDER_OPTIONS"].update(application_id=APP_ID, message_id=MSG_ID, voice_message_id=MSG_ID)
    http.get(APP_URL, json=LIVE_APP)
    http.get(MSG_URL, json=LIVE_SMS)
    http.get(MSG_URL, json=LIVE_SMS)
    assert not_compliant() == [
        "voice template: messageText holds the origin line @example.com #{{pin}}, which calls read out"
    ]


def test_webotp_check_reports_a_missing_voice_template(http, configured_ids, webotp):
    http.get(APP_URL, json=LIVE_APP)
    http.get(MSG_URL, json=LIVE_SMS)
    http.get(MESSAGES, json=[LIVE_SMS])  # the SMS template has no plain twin for calls
    assert not_compliant() == [f"application {APP_ID} has no voice template with the expected text"]


def test_webotp_check_finds_the_voice_template_by_text(http, configured_ids, webotp):
    http.get(APP_URL, json=LIVE_APP)
    http.get(MSG_URL, json=LIVE_SMS)
    http.get(MESSAGES, json=[LIVE_SMS, LIVE_VOICE])
    assert "complies" in run("--check")[0]


def test_webotp_check_reports_a_configured_voice_template_that_does_not_exist(http, all_ids):
    http.get(APP_URL, json=LIVE_APP)
    http.get(MSG_URL, json=LIVE_SMS)
    http.get(VOICE_URL, status=404, json={"requestError": {"serviceException": {"messageId": "NOT_FOUND"}}})
    assert not_compliant() == [f"the configured voice template {VOICE_ID} does not exist in application {APP_ID}"]


def test_webotp_check_by_name_and_text(http, webotp):
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_TEMPLATE])  # not origin-bound yet: only the voice text matches
    assert not_compliant() == [f"application {APP_ID} has no SMS template with the expected text"]


def test_without_a_domain_the_sms_template_is_not_the_configured_voice_one(http, settings):
    settings.OTP["PROVIDER_OPTIONS"].update(application_id=APP_ID, voice_message_id=VOICE_ID)
    http.get(APPS, json=[LIVE_APP])
    http.get(MESSAGES, json=[LIVE_VOICE])  # the same plain text as an SMS template would have
    http.post(MESSAGES, json=LIVE_TEMPLATE)
    out, _ = run()
    assert calls(http)[2:] == [("POST", MESSAGES, {k: v for k, v in WANTED_TEMPLATE.items() if k != "language"})]
    assert f"INFOBIP_2FA_MSG_ID={MSG_ID}" in out and f"INFOBIP_2FA_VOICE_MSG_ID={VOICE_ID}" in out

"""The local Infobip 2FA emulator: state machine, HTTP surface, faults, command, end to end."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command

from otp.emulator import Emulator, EmulatorServer, NotLoopback, running_emulator
from otp.emulator.errors import ApiError
from otp.emulator.faults import FaultPlan, parse_fault_spec, parse_latency_spec
from otp.emulator.formats import ONE_DAY, parse_duration, parse_limit
from otp.emulator.state import NO_MORE_PIN_ATTEMPTS, TTL_EXPIRED, WRONG_PIN
from otp.emulator.validation import SendRequest, send_request, template_request
from otp.models import AttemptStatus, OtpAttempt
from tests.conftest import ManualClock
from tests.e2e import emulated_infobip

KEY = "emulator-test-key"
PHONE = "14155552671"
OTHER = "14155552672"
HEX32 = re.compile(r"[0-9A-F]{32}")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_emulator(clock: ManualClock, **config: Any) -> tuple[Emulator, str, str]:
    emulator = Emulator(clock=clock)
    parsed = {
        k: parse_limit(v) if "/" in str(v) else parse_duration(v) if isinstance(v, str) else v
        for k, v in config.items()
    }
    app_id, msg_id = emulator.seed(configuration=parsed)
    return emulator, app_id, msg_id


@pytest.fixture
def emu(clock: ManualClock) -> tuple[Emulator, str, str]:
    return make_emulator(clock, pinAttempts=3, pinTimeToLive="5m", verifyPinLimit="100/1s")


def send(emulator: Emulator, app_id: str, msg_id: str, to: str = PHONE) -> tuple[str, str]:
    answer = emulator.send_pin(SendRequest(app_id, msg_id, to))
    stored = emulator.pins[answer["pinId"]]
    return answer["pinId"], stored.pin


def status_of(call: Any) -> int:
    with pytest.raises(ApiError) as info:
        call()
    return info.value.status


# -- formats -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900),
        ("m", 60),
        ("5ms", 0.005),
        ("2h", 7200),
        ("1d", 86400),
        ("30s", 30),
        ("365d", 365 * 86400),
    ],
)
def test_durations_parse(text, seconds):
    assert parse_duration(text).seconds == pytest.approx(seconds)
    assert str(parse_duration(text)) == text


@pytest.mark.parametrize("text", ["0m", "15", "15M", "-1m", " 15m", "1.5m", "15mm", "", "366d", None, 15])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "attempts", "seconds"),
    [
        ("3/1d", 3, 86400),
        ("1/3s", 1, 3),
        ("3/d", 3, 86400),
        ("10000/1d", 10000, 86400),
        ("2/500ms", 2, 0.5),
    ],
)
def test_limits_parse(text, attempts, seconds):
    limit = parse_limit(text)
    assert (limit.attempts, limit.window.seconds) == (attempts, pytest.approx(seconds))


@pytest.mark.parametrize("text", ["0/1s", "3/", "/1s", "3/1x", "3", "3/0s", "a/1s", "3 /1s"])
def test_bad_limits_are_refused(text):
    with pytest.raises(ValueError):
        parse_limit(text)


def test_verify_limit_window_is_at_most_a_day():
    assert parse_limit("5/1d", maximum=ONE_DAY).attempts == 5
    with pytest.raises(ValueError, match="one day"):
        parse_limit("5/2d", maximum=ONE_DAY)


# -- state machine -------------------------------------------------------------


def test_send_creates_a_numeric_pin_and_renders_the_template(emu):
    emulator, app_id, msg_id = emu
    answer = emulator.send_pin(SendRequest(app_id, msg_id, PHONE))
    assert HEX32.fullmatch(answer["pinId"])
    assert answer == {
        "pinId": answer["pinId"],
        "to": PHONE,
        "ncStatus": "NC_DESTINATION_REACHABLE",
        "smsStatus": "MESSAGE_SENT",
    }
    pin = emulator.last_pin("+" + PHONE)
    assert pin is not None and re.fullmatch(r"\d{6}", pin.pin)
    assert pin.text == f"Your verification code is {pin.pin}"
    assert emulator.stats()["smsSent"] == 1


@pytest.mark.parametrize(
    ("pin_type", "alphabet"),
    [
        ("ALPHA", "[A-Z]"),
        ("HEX", "[0-9A-F]"),
        ("ALPHANUMERIC", "[0-9A-Z]"),
        ("NUMERIC", "[0-9]"),
    ],
)
def test_pin_types_and_lengths(clock, pin_type, alphabet):
    emulator, app_id, _ = make_emulator(clock)
    msg_id = emulator.create_template(
        app_id, {"messageText": "{{pin}} for {{name}}", "pinType": pin_type, "pinLength": 8}
    )
    answer = emulator.send_pin(SendRequest(app_id, msg_id, PHONE, placeholders={"name": "Ann"}))
    pin = emulator.pins[answer["pinId"]]
    assert re.fullmatch(f"{alphabet}{{8}}", pin.pin)
    assert pin.text == f"{pin.pin} for Ann"


def test_verify_within_ttl_and_after_it(emu, clock):
    emulator, app_id, msg_id = emu
    pin_id, pin = send(emulator, app_id, msg_id)
    clock.advance(299.9)
    assert emulator.verify_pin(pin_id, pin) == {
        "pinId": pin_id,
        "msisdn": PHONE,
        "verified": True,
        "attemptsRemaining": 0,
    }
    late_id, late_pin = send(emulator, app_id, msg_id, OTHER)
    clock.advance(300)
    answer = emulator.verify_pin(late_id, late_pin)
    assert (answer["verified"], answer["pinError"], answer["attemptsRemaining"]) == (False, TTL_EXPIRED, 3)
    answer = emulator.verify_pin(late_id, "000000")
    assert (answer["pinError"], answer["attemptsRemaining"]) == (TTL_EXPIRED, 3)  # no attempt used


def test_wrong_pins_use_attempts_then_nothing_verifies(emu):
    emulator, app_id, msg_id = emu
    pin_id, pin = send(emulator, app_id, msg_id)
    wrong = "x" + pin[1:]
    remaining = [emulator.verify_pin(pin_id, wrong) for _ in range(3)]
    assert [(a["pinError"], a["attemptsRemaining"]) for a in remaining] == [
        (WRONG_PIN, 2),
        (WRONG_PIN, 1),
        (WRONG_PIN, 0),
    ]
    answer = emulator.verify_pin(pin_id, pin)
    assert (answer["verified"], answer["pinError"], answer["attemptsRemaining"]) == (False, NO_MORE_PIN_ATTEMPTS, 0)
    assert emulator.stats()["wrongPin"] == 3 and emulator.stats()["verified"] == 0


def test_exhausted_is_checked_before_expired(emu, clock):
    emulator, app_id, msg_id = emu
    pin_id, _ = send(emulator, app_id, msg_id)
    for _ in range(3):
        emulator.verify_pin(pin_id, "bad")
    clock.advance(600)
    assert emulator.verify_pin(pin_id, "bad")["pinError"] == NO_MORE_PIN_ATTEMPTS


@pytest.mark.parametrize(("multiple", "second"), [(True, True), (False, False)])
def test_allow_multiple_pin_verifications(clock, multiple, second):
    emulator, app_id, msg_id = make_emulator(clock, allowMultiplePinVerifications=multiple, verifyPinLimit="10/1s")
    pin_id, pin = send(emulator, app_id, msg_id)
    assert emulator.verify_pin(pin_id, pin)["verified"] is True
    again = emulator.verify_pin(pin_id, pin)
    assert again["verified"] is second
    assert again.get("pinError") == (None if second else NO_MORE_PIN_ATTEMPTS)


def test_verify_pin_limit_comes_first_and_uses_no_attempt(clock):
    emulator, app_id, msg_id = make_emulator(clock)  # Infobip's default 1/3s
    pin_id, pin = send(emulator, app_id, msg_id)
    assert emulator.verify_pin(pin_id, "bad")["attemptsRemaining"] == 9
    with pytest.raises(ApiError) as info:
        emulator.verify_pin(pin_id, pin)
    assert (info.value.status, info.value.headers) == (429, {"Retry-After": "3"})
    clock.advance(3)
    assert emulator.verify_pin(pin_id, pin)["verified"] is True
    assert status_of(lambda: emulator.verify_pin("0" * 32, pin)) == 404
    emulator.verify_limit = False
    assert emulator.verify_pin(pin_id, pin)["verified"] is True


def test_send_limit_per_phone_number_slides(clock):
    emulator, app_id, msg_id = make_emulator(clock)  # 3/1d per number
    for _ in range(3):
        send(emulator, app_id, msg_id)
    assert status_of(lambda: send(emulator, app_id, msg_id)) == 429
    send(emulator, app_id, msg_id, OTHER)
    clock.advance(ONE_DAY)
    send(emulator, app_id, msg_id)
    assert emulator.stats()["smsSent"] == 5 and emulator.stats()["rateLimited"] == 1


def test_send_limit_per_application_and_switching_limits_off(clock):
    emulator, app_id, msg_id = make_emulator(clock, sendPinPerApplicationLimit="2/1m")
    send(emulator, app_id, msg_id, "14155550001")
    send(emulator, app_id, msg_id, "14155550002")
    assert status_of(lambda: send(emulator, app_id, msg_id, "14155550003")) == 429
    emulator.send_limits = False
    for _ in range(5):
        send(emulator, app_id, msg_id, "14155550003")
    emulator.send_limits = True
    clock.advance(60)
    # The refused send and the unlimited ones used no slot.
    send(emulator, app_id, msg_id, "14155550004")


def test_resend_keeps_pin_and_ttl_and_counts_against_limits(emu, clock):
    emulator, app_id, msg_id = emu
    pin_id, pin = send(emulator, app_id, msg_id)
    clock.advance(200)
    answer = emulator.resend_pin(pin_id, channel="voice", placeholders={})
    assert answer == {"pinId": pin_id, "to": PHONE, "callStatus": "PENDING_ACCEPTED"}
    assert emulator.pins[pin_id].pin == pin
    emulator.resend_pin(pin_id, channel="sms", placeholders={})
    assert status_of(lambda: emulator.resend_pin(pin_id, channel="sms", placeholders={})) == 429
    stats = emulator.stats()
    assert (stats["smsSent"], stats["voiceCalls"], stats["resent"]) == (2, 1, 2)
    clock.advance(100)  # 300 s after the send: the resends did not extend its life
    assert emulator.verify_pin(pin_id, pin)["pinError"] == TTL_EXPIRED


def test_resend_of_dead_or_unknown_pins(emu, clock):
    emulator, app_id, msg_id = emu
    exhausted, _ = send(emulator, app_id, msg_id)
    for _ in range(3):
        emulator.verify_pin(exhausted, "bad")
    assert status_of(lambda: emulator.resend_pin(exhausted, channel="sms", placeholders={})) == 400
    expired, _ = send(emulator, app_id, msg_id, OTHER)
    clock.advance(300)
    assert status_of(lambda: emulator.resend_pin(expired, channel="sms", placeholders={})) == 400
    assert status_of(lambda: emulator.resend_pin("F" * 32, channel="sms", placeholders={})) == 404


def test_stats_count_sends_resends_and_verifies(emu):
    emulator, app_id, msg_id = emu
    pin_id, pin = send(emulator, app_id, msg_id)
    emulator.send_pin(SendRequest(app_id, msg_id, OTHER), channel="voice")
    emulator.resend_pin(pin_id, channel="sms", placeholders={})
    emulator.verify_pin(pin_id, "bad")
    emulator.verify_pin(pin_id, pin)
    assert emulator.stats() == {
        "smsSent": 2,
        "voiceCalls": 1,
        "resent": 1,
        "notSent": 0,
        "verifyRequests": 2,
        "verified": 1,
        "wrongPin": 1,
        "rateLimited": 0,
        "pinsStored": 2,
    }


def test_unknown_ids_in_a_send_are_400_and_a_disabled_app_403(emu):
    emulator, app_id, msg_id = emu
    with pytest.raises(ApiError) as info:
        send(emulator, "nope", msg_id)
    assert (info.value.status, info.value.validation_errors) == (400, {"applicationId": ["not found"]})
    with pytest.raises(ApiError) as info:
        send(emulator, app_id, "nope")
    assert info.value.validation_errors == {"messageId": ["not found"]}
    emulator.update_application(app_id, "off", enabled=False, configuration={})
    assert status_of(lambda: send(emulator, app_id, msg_id)) == 403


def test_unreachable_numbers_are_not_sent(emu):
    emulator, app_id, msg_id = emu
    emulator.unreachable = {PHONE}
    answer = emulator.send_pin(SendRequest(app_id, msg_id, PHONE))
    assert (answer["ncStatus"], answer["smsStatus"]) == ("NC_DESTINATION_NOT_REACHABLE", "MESSAGE_NOT_SENT")
    assert emulator.stats()["smsSent"] == 0 and emulator.stats()["notSent"] == 1


def test_update_application_merges_and_reset_keeps_applications(emu):
    emulator, app_id, msg_id = emu
    emulator.update_application(app_id, "renamed", enabled=None, configuration={"pinAttempts": 7})
    app = emulator.application(app_id).as_json()
    assert app["name"] == "renamed" and app["enabled"] is True
    assert (app["configuration"]["pinAttempts"], app["configuration"]["pinTimeToLive"]) == (7, "5m")
    send(emulator, app_id, msg_id)
    emulator.reset()
    assert emulator.pins == {} and emulator.last_pin(PHONE) is None and emulator.stats()["smsSent"] == 0
    assert emulator.application(app_id).templates[msg_id]["pinType"] == "NUMERIC"
    emulator.reset(applications=True)
    assert status_of(lambda: emulator.application(app_id)) == 404


def test_dead_pins_and_idle_limit_windows_are_forgotten(clock):
    emulator, app_id, msg_id = make_emulator(clock, pinTimeToLive="5m")
    old_id, _ = send(emulator, app_id, msg_id)
    clock.advance(ONE_DAY + 3600)
    send(emulator, app_id, msg_id, OTHER)
    assert old_id not in emulator.pins and emulator.last_pin(PHONE) is None
    assert status_of(lambda: emulator.verify_pin(old_id, "1")) == 404
    assert set(emulator.windows) == {("app", app_id), ("phone", app_id, OTHER)}


def test_pins_are_uniform_enough():
    from otp.emulator.state import random_pin

    pins = [random_pin("0123456789", 2) for _ in range(4000)]
    assert all(len(p) == 2 for p in pins)
    counts = [sum(p[0] == d for p in pins) for d in "0123456789"]
    assert min(counts) > 300 and max(counts) < 500  # 400 expected per digit
    assert len(set(pins)) > 95


# -- request validation --------------------------------------------------------


def test_send_request_lists_every_problem():
    with pytest.raises(ApiError) as info:
        send_request({"to": "12ab", "placeholders": {"pin": "1", "x": 2}, "trackDelivery": "yes"})
    assert info.value.status == 400 and info.value.validation_errors is not None
    assert set(info.value.validation_errors) == {"applicationId", "messageId", "to", "placeholders", "trackDelivery"}
    assert send_request({"applicationId": "a", "messageId": "m", "to": "+14155552671"}).to == PHONE
    assert status_of(lambda: send_request([1, 2])) == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messageText": "no placeholder", "pinType": "NUMERIC"}, "messageText"),
        ({"messageText": "{{pin}}", "pinType": "DIGITS"}, "pinType"),
        ({"messageText": "{{pin}}", "pinType": "HEX", "pinLength": 0}, "pinLength"),
        ({"messageText": "{{pin}}", "pinType": "HEX", "pinLength": True}, "pinLength"),
        ({"messageText": "{{pin}}", "pinType": "HEX", "speechRate": 3}, "speechRate"),
        ({"messageText": "{{pin}}", "pinType": "HEX", "language": "pt-pt"}, "language"),
        ({"pinType": "HEX"}, "messageText"),
    ],
)
def test_template_validation(body, field):
    with pytest.raises(ApiError) as info:
        template_request(body, partial=False)
    assert info.value.validation_errors is not None
    assert list(info.value.validation_errors) == [field]


def test_template_update_is_partial():
    assert template_request({"senderId": "Acme", "speechRate": 1}, partial=True) == {
        "senderId": "Acme",
        "speechRate": 1,
    }


# -- faults (no sockets) -------------------------------------------------------


def test_fault_specs_and_plan():
    fault = parse_fault_spec("error,status=503,route=verify,count=2")
    assert (fault.kind, fault.status, fault.route, fault.count) == ("error", 503, "verify", 2)
    assert parse_fault_spec("hang,count=always").count is None
    for bad in (
        "nope",
        "error,status=200",
        "error,route=everywhere",
        "error,count=0",
        "error,colour=red",
        "error,status",
    ):
        with pytest.raises((ValueError, TypeError)):
            parse_fault_spec(bad)
    assert parse_latency_spec("50") == ("all", 50)
    assert parse_latency_spec("verify=200") == ("verify", 200)
    with pytest.raises(ValueError):
        parse_latency_spec("verify=-1")
    plan = FaultPlan()
    plan.add(fault)
    plan.set_latency("all", 10)
    plan.set_latency("verify", 200)
    assert (plan.latency("send"), plan.latency("verify")) == (0.01, 0.2)
    assert plan.take("send") is None
    first, second = plan.take("verify"), plan.take("verify")
    assert first is not None and first.count == 2
    assert second is not None and second.count == 1
    assert plan.take("verify") is None


# -- HTTP ----------------------------------------------------------------------


class Http:
    """A requests session against the emulator, with the key set."""

    def __init__(self, server: EmulatorServer, app_id: str, msg_id: str) -> None:
        self.server, self.app_id, self.msg_id = server, app_id, msg_id
        self.session = requests.Session()
        self.session.trust_env = False

    def __call__(self, method: str, path: str, body: Any = None, key: str | None = KEY, **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        if key is not None:
            headers.setdefault("Authorization", f"App {key}")
        kw.setdefault("timeout", 2)
        return self.session.request(
            method, self.server.base_url + path, json=body, headers=headers, allow_redirects=False, **kw
        )

    def send(self, to: str = PHONE, **kw: Any) -> Any:
        return self("POST", "/2fa/2/pin", {"applicationId": self.app_id, "messageId": self.msg_id, "to": to}, **kw)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        return self(method, "/_emulator/" + path, body, key=None)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with running_emulator(api_key=KEY, hang_seconds=5) as running:
        yield running


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[Http]:
    server.emulator.reset(applications=True)
    server.faults.clear()
    server.emulator.send_limits = server.emulator.verify_limit = True
    app_id, msg_id = server.emulator.seed(configuration={"verifyPinLimit": parse_limit("100/1s")})
    client = Http(server, app_id, msg_id)
    yield client
    client.session.close()


def assert_envelope(response: Any, status: int, message_id: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    exception = response.json()["requestError"]["serviceException"]
    assert exception["messageId"] == message_id and exception["text"]
    return exception


@pytest.mark.parametrize("header", [None, "", "App wrong-key", f"Bearer {KEY}", f"Basic {KEY}", "App", f"App{KEY}"])
def test_bad_credentials_get_401(http, header):
    headers = {} if header is None else {"Authorization": header}
    response = http("GET", "/2fa/2/applications", key=None, headers=headers)
    assert_envelope(response, 401, "UNAUTHORIZED")


def test_key_scheme_is_case_insensitive_and_unknown_paths_need_a_key(http):
    assert http("GET", "/2fa/2/applications", key=None, headers={"Authorization": f"APP {KEY}"}).status_code == 200
    assert_envelope(http("GET", "/2fa/2/nothing", key=None), 401, "UNAUTHORIZED")
    assert_envelope(http("GET", "/2fa/2/nothing"), 404, "NOT_FOUND")
    assert_envelope(http("DELETE", "/2fa/2/applications"), 405, "METHOD_NOT_ALLOWED")


def test_application_endpoints(http):
    created = http("POST", "/2fa/2/applications", {"name": "signup", "configuration": {"pinAttempts": 4}})
    assert created.status_code == 200
    app = created.json()
    assert HEX32.fullmatch(app["applicationId"]) and app["enabled"] is True
    assert app["configuration"] == {
        "pinAttempts": 4,
        "allowMultiplePinVerifications": True,
        "pinTimeToLive": "15m",
        "verifyPinLimit": "1/3s",
        "sendPinPerApplicationLimit": "10000/1d",
        "sendPinPerPhoneNumberLimit": "3/1d",
    }
    path = f"/2fa/2/applications/{app['applicationId']}"
    assert http("GET", path).json() == app
    updated = http("PUT", path, {"name": "signup2", "configuration": {"pinTimeToLive": "2m"}}).json()
    assert updated["configuration"] == {**app["configuration"], "pinTimeToLive": "2m"}
    assert updated["name"] == "signup2"
    assert {a["applicationId"] for a in http("GET", "/2fa/2/applications").json()} == {
        http.app_id,
        app["applicationId"],
    }
    assert_envelope(http("GET", "/2fa/2/applications/NOPE"), 404, "NOT_FOUND")
    assert_envelope(http("PUT", "/2fa/2/applications/NOPE", {"name": "x"}), 404, "NOT_FOUND")
    bad = assert_envelope(
        http("PUT", path, {"configuration": {"verifyPinLimit": "1/2d", "pinAttempts": 0}}), 400, "BAD_REQUEST"
    )
    assert set(bad["validationErrors"]) == {"name", "configuration.verifyPinLimit", "configuration.pinAttempts"}
    http.server.emulator.create_status = 201
    try:
        assert http("POST", "/2fa/2/applications", {"name": "x"}).status_code == 201
    finally:
        http.server.emulator.create_status = 200


def test_template_endpoints(http):
    base = f"/2fa/2/applications/{http.app_id}/messages"
    created = http(
        "POST",
        base,
        {"messageText": "Code {{pin}}", "pinType": "HEX", "speechRate": 1.5, "repeatDTMF": "1#", "voiceName": "Joanna"},
    )
    assert created.status_code == 200
    template = created.json()
    assert template["pinPlaceholder"] == "{{pin}}" and template["pinLength"] == 6
    assert (template["applicationId"], template["language"], template["speechRate"]) == (http.app_id, "en", 1.5)
    path = f"{base}/{template['messageId']}"
    assert http("GET", path).json() == template
    assert http("PUT", path, {"pinLength": 8}).json() == {**template, "pinLength": 8}
    assert len(http("GET", base).json()) == 2
    assert_envelope(http("GET", f"{base}/NOPE"), 404, "NOT_FOUND")
    assert_envelope(http("GET", "/2fa/2/applications/NOPE/messages"), 404, "NOT_FOUND")
    assert_envelope(http("POST", "/2fa/2/applications/NOPE/messages", {"messageText": "{{pin}}"}), 404, "NOT_FOUND")
    bad = assert_envelope(http("PUT", path, {"messageText": "no pin"}), 400, "BAD_REQUEST")
    assert bad["validationErrors"] == {"messageText": ["must contain {{pin}}"]}
    response = http("POST", base, key=KEY, data=b"{not json", headers={"Content-Type": "application/json"})
    assert_envelope(response, 400, "BAD_REQUEST")


def test_send_verify_and_resend_over_http(http):
    sent = http.send("+" + PHONE).json()
    assert sent["to"] == PHONE and sent["smsStatus"] == "MESSAGE_SENT"
    no_nc = http(
        "POST", "/2fa/2/pin?ncNeeded=false", {"applicationId": http.app_id, "messageId": http.msg_id, "to": OTHER}
    ).json()
    assert "ncStatus" not in no_nc and no_nc["smsStatus"] == "MESSAGE_SENT"
    bad = assert_envelope(http("POST", "/2fa/2/pin?ncNeeded=maybe", {}), 400, "BAD_REQUEST")
    assert "ncNeeded" in bad["validationErrors"]
    voice = http(
        "POST", "/2fa/2/pin/voice", {"applicationId": http.app_id, "messageId": http.msg_id, "to": "14155550000"}
    ).json()
    assert voice["callStatus"] == "PENDING_ACCEPTED" and "smsStatus" not in voice
    pin_id = sent["pinId"]
    resent = http("POST", f"/2fa/2/pin/{pin_id}/resend")  # the body is optional
    assert resent.json()["pinId"] == pin_id
    assert http("POST", f"/2fa/2/pin/{pin_id}/resend/voice", {}).json()["callStatus"] == "PENDING_ACCEPTED"
    pin = http.control("GET", f"pins/last?to=%2B{PHONE}").json()["pin"]
    wrong = http("POST", f"/2fa/2/pin/{pin_id}/verify", {"pin": "x"}).json()
    assert wrong == {
        "pinId": pin_id,
        "msisdn": PHONE,
        "verified": False,
        "attemptsRemaining": 9,
        "pinError": "WRONG_PIN",
    }
    ok = http("POST", f"/2fa/2/pin/{pin_id}/verify", {"pin": pin}).json()
    assert ok == {"pinId": pin_id, "msisdn": PHONE, "verified": True, "attemptsRemaining": 0}
    assert_envelope(http("POST", f"/2fa/2/pin/{'0' * 32}/verify", {"pin": pin}), 404, "NOT_FOUND")
    assert_envelope(http("POST", f"/2fa/2/pin/{'0' * 32}/resend", {}), 404, "NOT_FOUND")
    missing = assert_envelope(http("POST", f"/2fa/2/pin/{pin_id}/verify", {"pin": 123456}), 400, "BAD_REQUEST")
    assert missing["validationErrors"] == {"pin": ["must be a string"]}
    unknown_app = assert_envelope(
        http("POST", "/2fa/2/pin", {"applicationId": "X", "messageId": "Y", "to": PHONE}), 400, "BAD_REQUEST"
    )
    assert unknown_app["validationErrors"] == {"applicationId": ["not found"]}


def test_send_limit_over_http_and_switching_it_off(http):
    for _ in range(3):
        assert http.send().status_code == 200
    assert_envelope(http.send(), 429, "TOO_MANY_REQUESTS")
    assert http.control("PUT", "limits", {"send": False}).json() == {"send": False, "verify": True}
    assert http.send().status_code == 200
    assert http.control("GET", "stats").json()["smsSent"] == 4


def test_control_api(http):
    assert http.control("GET", "health").json() == {"status": "ok"}
    assert_envelope(http.control("GET", f"pins/last?to={PHONE}"), 404, "NOT_FOUND")
    assert_envelope(http.control("GET", "pins/last?to=abc"), 400, "BAD_REQUEST")
    pin_id = http.send().json()["pinId"]
    last = http.control("GET", f"pins/last?to={PHONE}").json()
    assert (last["pinId"], last["to"], last["channel"]) == (pin_id, PHONE, "sms")
    assert http.control("GET", f"pins/{pin_id}").json() == last
    assert http.control("PUT", "unreachable", {"numbers": ["+" + OTHER]}).json() == {"numbers": [OTHER]}
    assert http.send(OTHER).json()["smsStatus"] == "MESSAGE_NOT_SENT"
    assert_envelope(http.control("PUT", "unreachable", {"numbers": ["nope"]}), 400, "BAD_REQUEST")
    assert http.control("POST", "reset").json() == {"reset": True, "applications": False}
    assert http.control("GET", "stats").json()["smsSent"] == 0
    assert http.send().status_code == 200  # the application survived the reset
    # The control API refuses requests whose Host is not loopback (DNS rebinding).
    rebound = http("GET", "/_emulator/stats", key=None, headers={"Host": "evil.example"})
    assert_envelope(rebound, 403, "FORBIDDEN")


def test_latency_per_route(http):
    http.control("PUT", "latency", {"ms": 300, "route": "verify"})
    started = time.monotonic()
    pin_id = http.send().json()["pinId"]
    assert time.monotonic() - started < 0.25
    started = time.monotonic()
    http("POST", f"/2fa/2/pin/{pin_id}/verify", {"pin": "x"})
    assert time.monotonic() - started >= 0.3
    assert http.control("GET", "faults").json()["latencyMs"] == {"verify": 300}
    assert_envelope(http.control("PUT", "latency", {"ms": -5}), 400, "BAD_REQUEST")


def add_fault(http: Http, **fault: Any) -> None:
    response = http.control("POST", "faults", fault)
    assert response.status_code == 200, response.text


def test_error_fault_fires_count_times_and_handles_nothing(http):
    add_fault(http, kind="error", status=503, route="send", count=2)
    assert_envelope(http.send(), 503, "GENERAL_ERROR")
    assert_envelope(http.send(), 503, "GENERAL_ERROR")
    assert http.send().status_code == 200
    assert http.control("GET", "stats").json()["smsSent"] == 1


def test_faults_target_their_route(http):
    add_fault(http, kind="error", route="verify")
    assert http.send().status_code == 200
    assert http("POST", f"/2fa/2/pin/{'0' * 32}/verify", {"pin": "1"}).status_code == 500
    assert http.control("GET", "faults").json()["faults"] == []


def test_rate_limit_fault_has_retry_after(http):
    add_fault(http, kind="rate_limit", retry_after=7)
    response = http.send()
    assert_envelope(response, 429, "TOO_MANY_REQUESTS")
    assert response.headers["Retry-After"] == "7"


def test_redirect_fault(http):
    add_fault(http, kind="redirect", location="http://127.0.0.1:9/elsewhere")
    response = http.send()
    assert (response.status_code, response.headers["Location"]) == (302, "http://127.0.0.1:9/elsewhere")


def test_hang_fault_times_the_client_out_after_the_pin_went_out(http):
    add_fault(http, kind="hang")
    with pytest.raises(requests.ReadTimeout):
        http.send(timeout=(1, 0.3))
    assert http.control("GET", "stats").json()["smsSent"] == 1


def test_reset_fault_drops_the_connection(http):
    add_fault(http, kind="reset", route="send")
    with pytest.raises(requests.ConnectionError):
        http.send()
    assert http.send().status_code == 200  # the next connection is fine


@pytest.mark.parametrize(
    ("kind", "content_type", "check"),
    [
        ("malformed", "application/json", lambda text: pytest.raises(ValueError, json.loads, text)),
        ("html", "text/html", lambda text: text.startswith("<html>")),
        ("empty", "application/json", lambda text: text == ""),
    ],
)
def test_unreadable_body_faults(http, kind, content_type, check):
    add_fault(http, kind=kind)
    response = http.send()
    assert (response.status_code, response.headers["Content-Type"]) == (200, content_type)
    assert check(response.text)


def test_wrong_types_and_mismatched_pin_id_faults(http):
    pin_id = http.send().json()["pinId"]
    pin = http.server.emulator.pins[pin_id].pin
    add_fault(http, kind="wrong_types", route="verify")
    body = http("POST", f"/2fa/2/pin/{pin_id}/verify", {"pin": pin}).json()
    assert (body["verified"], body["attemptsRemaining"]) == ("true", "0")
    add_fault(http, kind="mismatched_pin_id", route="verify")
    body = http("POST", f"/2fa/2/pin/{pin_id}/verify", {"pin": pin}).json()
    assert HEX32.fullmatch(body["pinId"]) and body["pinId"] != pin_id and body["verified"] is True


def test_faults_via_control_api_are_validated_and_cleared(http):
    assert_envelope(http.control("POST", "faults", {"kind": "explode"}), 400, "BAD_REQUEST")
    add_fault(http, kind="error", count=None)
    assert http.control("DELETE", "faults").json() == {"latencyMs": {}, "faults": []}
    assert http.send().status_code == 200


def raw_exchange(server: EmulatorServer, data: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=2) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_keep_alive_and_pipelining_on_one_connection(http):
    one = (f"GET /2fa/2/applications/{http.app_id} HTTP/1.1\r\nHost: x\r\nAuthorization: App {KEY}\r\n\r\n").encode()
    last = b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(http.server, one * 3 + last)
    assert answer.count(b"HTTP/1.1 200 OK") == 4
    assert answer.endswith(b'{"status":"ok"}')


def test_a_delayed_answer_keeps_pipelined_answers_in_order(http):
    http.control("PUT", "latency", {"ms": 100, "route": "verify"})
    slow = f"POST /2fa/2/pin/{'0' * 32}/verify HTTP/1.1\r\nAuthorization: App {KEY}\r\nContent-Length: 11\r\n\r\n"
    fast = "GET /_emulator/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(http.server, (slow + '{"pin":"1"}' + fast).encode())
    assert answer.startswith(b"HTTP/1.1 404") and answer.index(b"404") < answer.index(b"200 OK")


def test_a_hang_ends_when_the_server_stops():
    with running_emulator(api_key=KEY) as server:
        server.faults.add(parse_fault_spec("hang,route=manage"))
        sock = socket.create_connection((server.host, server.port), timeout=3)
        sock.sendall(f"GET /2fa/2/applications HTTP/1.1\r\nAuthorization: App {KEY}\r\n\r\n".encode())
        time.sleep(0.05)
    started = time.monotonic()
    with sock:
        assert sock.recv(100) == b""
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"POST /2fa/2/pin HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"501"),
        (b"POST /2fa/2/pin HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b"413"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", b"400"),
    ],
)
def test_unreadable_requests_are_refused_and_closed(http, data, status):
    assert raw_exchange(http.server, data).startswith(b"HTTP/1.1 " + status)


# -- binding and the command ---------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "example.com", "", "::"])
def test_only_loopback_addresses(host):
    with pytest.raises(NotLoopback):
        EmulatorServer(api_keys=[KEY], host=host)


def test_command_refuses_non_loopback_and_bad_switches():
    with pytest.raises(CommandError, match="loopback"):
        call_command("otp_emulator", "--host", "0.0.0.0")
    with pytest.raises(CommandError, match="kind"):
        call_command("otp_emulator", "--fault", "explode")
    with pytest.raises(CommandError, match="pinTimeToLive"):
        call_command("otp_emulator", "--app-config", "pinTimeToLive=5x")


def test_command_serves_seeded_ids_and_stops_on_sigterm():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "otp_emulator",
            "--port",
            "0",
            "--api-key",
            KEY,
            "--app-id",
            "APP1",
            "--msg-id",
            "MSG1",
            "--no-send-limits",
            "--fault",
            "error,status=502,route=verify",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]
        listening = re.search(r"listening on (http://\S+)", lines[0])
        assert listening is not None, lines
        url = listening[1]
        assert "APP1" in lines[2] and "MSG1" in lines[3]
        body = {"applicationId": "APP1", "messageId": "MSG1", "to": PHONE}
        headers = {"Authorization": f"App {KEY}"}
        for _ in range(4):  # --no-send-limits: past the 3/1d per-number default
            assert requests.post(url + "/2fa/2/pin", json=body, headers=headers, timeout=2).status_code == 200
        verify = requests.post(url + "/2fa/2/pin/X/verify", json={"pin": "1"}, headers=headers, timeout=2)
        assert verify.status_code == 502
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert "stopped" in process.stdout.read()
    finally:
        process.kill()
        process.wait()


# -- end to end: the app's API, the Infobip provider and the emulator ----------


@pytest.mark.django_db
def test_app_sends_and_verifies_through_the_emulator(settings, otp_api):
    with emulated_infobip(settings) as infobip:
        assert otp_api.send("+" + PHONE).status_code == 200
        response = otp_api.verify(infobip.last_pin(PHONE), phone="+" + PHONE)
        assert response.status_code == 200, response.json()
        assert OtpAttempt.objects.get(phone="+" + PHONE).status == AttemptStatus.VERIFIED

        assert otp_api.send("+" + OTHER).status_code == 200
        pin = infobip.last_pin(OTHER)
        wrong = "0" * len(pin) if pin != "0" * len(pin) else "1" * len(pin)
        assert otp_api.verify(wrong, phone="+" + OTHER).status_code == 401
        assert infobip.server.emulator.stats()["wrongPin"] == 1
        assert infobip.server.emulator.stats()["smsSent"] == 2


@pytest.mark.django_db
def test_app_answers_503_when_the_emulated_upstream_fails(settings, otp_api):
    with emulated_infobip(settings) as infobip:
        infobip.server.faults.add(parse_fault_spec("error,status=503,route=send"))
        response = otp_api.send("+" + PHONE)
        assert response.status_code == 503
        assert infobip.server.emulator.stats()["smsSent"] == 0

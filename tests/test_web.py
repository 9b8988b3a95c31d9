"""The HTML pages (otp.web): the number, then the code, under the same rules and buckets as the API.

tests/urls.py includes the pages at /phone/ and has a stand-in for a site's
next view (/after-verification) that reads the verified number once.
"""

from __future__ import annotations

import time
from html.parser import HTMLParser
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import OperationalError
from django.http import HttpRequest
from django.test import Client

from otp import services, signals
from otp.exceptions import ProviderUnavailable
from otp.models import AttemptStatus, OtpAttempt, PhoneState
from otp.providers import locmem
from otp.web.session import PENDING_KEY, VERIFIED_KEY
from tests.conftest import PHONE

pytestmark = pytest.mark.django_db

START = "/phone/"
VERIFY = "/phone/verify/"
RESEND = "/phone/resend/"
DONE = "/phone/verified/"
AFTER = "/after-verification"
OTHER_PHONE = "+14155550123"


# -- reading the pages --------------------------------------------------------------


class _Page(HTMLParser):
    """The start tags of a page (tag, attributes) and the text inside each element with an id."""

    VOID = {"input", "meta", "link", "br", "img", "hr"}

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, Any]]] = []
        self.texts: dict[str, str] = {}
        self._open: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag not in self.VOID:
            element_id = attributes.get("id")
            self._open.append(element_id)
            if element_id:
                self.texts[element_id] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            if element_id:
                self.texts[element_id] += data


def page(response) -> _Page:
    return _Page(response.content.decode())


def find(response, tag: str, **attributes: str) -> list[dict[str, Any]]:
    """The attributes of every ``tag`` element whose attributes include ``attributes``."""
    return [a for t, a in page(response).tags if t == tag and all(a.get(k) == v for k, v in attributes.items())]


def by_id(response, element_id: str) -> dict[str, Any]:
    (attributes,) = [a for _, a in page(response).tags if a.get("id") == element_id]
    return attributes


def text(response, element_id: str) -> str:
    return " ".join(page(response).texts[element_id].split())


def wrong(pin: str) -> str:
    return "000000" if pin != "000000" else "111111"


def send(client: Client, phone: str = PHONE, **fields: str):
    return client.post(START, {"phone_number": phone, **fields})


def verify(client: Client, code: str, **extra: Any):
    return client.post(VERIFY, {"code": code}, **extra)


@pytest.fixture
def client() -> Client:
    return Client()


# -- the flow -----------------------------------------------------------------------


def test_number_then_code_then_the_verified_number_once(client, outbox):
    response = send(client, "+1 415 555 2671")
    assert response.status_code == 302 and response["Location"] == VERIFY
    assert [m.phone for m in outbox] == [PHONE]

    code_page = client.get(VERIFY)
    assert code_page.status_code == 200
    assert text(code_page, "otp-notice") == "We sent a code to +1 415-555-2671."
    assert by_id(code_page, "otp-notice")["role"] == "status"
    # The notice is said once; a reload says where the code went, without announcing it.
    assert "role" not in by_id(client.get(VERIFY), "otp-notice")

    response = verify(client, outbox[0].pin)
    assert response.status_code == 302 and response["Location"] == DONE
    attempt = OtpAttempt.objects.get()
    assert attempt.status == AttemptStatus.VERIFIED and attempt.phone == PHONE

    done = client.get(DONE)
    assert text(done, "otp-verified-phone") == "+1 415-555-2671 is verified."
    # The page read the number: it is gone from the session.
    assert "otp-verified-phone" not in page(client.get(DONE)).texts
    assert VERIFIED_KEY not in client.session and PENDING_KEY not in client.session


def test_the_code_page_without_a_pending_code_sends_back_to_the_start(client):
    response = client.get(VERIFY)
    assert response.status_code == 302 and response["Location"] == START
    assert client.post(RESEND).status_code == 302


def test_the_resend_button_only_posts(client, outbox):
    send(client)
    assert client.get(RESEND).status_code == 405


def test_a_pending_code_ends_when_it_expires(client, outbox, settings):
    send(client)
    with time_machine.travel(time.time() + settings.OTP.get("CODE_TTL_SECONDS", 300) + 1, tick=False):
        response = client.get(VERIFY)
        assert response.status_code == 302 and response["Location"] == START
        assert PENDING_KEY not in client.session


def test_national_number_with_the_default_region(client, outbox, settings):
    settings.OTP = {**settings.OTP, "DEFAULT_REGION": "US"}
    help_text = text(client.get(START), "id_phone_number_helptext")
    assert help_text.startswith("Include the country code, starting with +, or enter a national number such as (")
    assert send(client, "(415) 555-2671").status_code == 302
    assert outbox[0].phone == PHONE


def test_a_bad_number_is_an_error_of_its_field_and_sends_nothing(client, outbox):
    response = send(client, "4155552671")  # no +, no default region
    assert response.status_code == 200
    assert text(response, "id_phone_number_error") == "Enter a valid phone number."
    field = by_id(response, "id_phone_number")
    assert field["aria-invalid"] == "true"
    assert field["aria-describedby"].split() == ["id_phone_number_helptext", "id_phone_number_error"]
    summary = by_id(response, "otp-error-summary")
    assert summary["role"] == "alert"
    assert find(response, "a", href="#id_phone_number")
    assert "Enter a valid phone number." in text(response, "otp-error-summary")
    assert outbox == [] and not OtpAttempt.objects.exists()
    assert "sessionid" not in response.cookies


def test_an_empty_number_says_so(client):
    response = send(client, "")
    assert text(response, "id_phone_number_error") == "Enter your phone number."


def test_a_refused_destination_is_an_error_of_the_number(client, outbox, settings):
    settings.OTP = {**settings.OTP, "ALLOWED_REGIONS": ["GB"]}
    response = send(client)
    assert response.status_code == 200
    assert text(response, "id_phone_number_error") == "Phone numbers from this country are not supported."
    assert outbox == []


def test_a_wrong_code_is_an_error_of_the_code_field_and_counts_like_the_api(client, outbox, otp_api):
    failures = []

    def failed(sender, phone, purpose, reason, **kwargs):
        failures.append((phone, reason))

    signals.verification_failed.connect(failed)
    try:
        send(client)
        response = verify(client, wrong(outbox[0].pin))
        # The same wrong code through the API, for another number.
        otp_api.send(OTHER_PHONE)
        api_answer = otp_api.verify(wrong(outbox[1].pin), phone=OTHER_PHONE)
    finally:
        signals.verification_failed.disconnect(failed)
    assert response.status_code == 200
    assert text(response, "id_code_error") == "Invalid or expired code."
    assert by_id(response, "id_code")["aria-invalid"] == "true"
    assert find(response, "a", href="#id_code")
    assert api_answer.status_code == 401
    html_attempt, api_attempt = OtpAttempt.objects.get(phone=PHONE), OtpAttempt.objects.get(phone=OTHER_PHONE)
    assert html_attempt.verify_slots_used == api_attempt.verify_slots_used == 1
    assert [PhoneState.objects.get(phone=p).consecutive_failures for p in (PHONE, OTHER_PHONE)] == [1, 1]
    assert failures == [(PHONE, "wrong_pin"), (OTHER_PHONE, "wrong_pin")]
    # Still pending: the right code verifies.
    assert verify(client, outbox[0].pin).status_code == 302


def test_every_failed_verify_reads_the_same(client, outbox, settings):
    settings.OTP = {**settings.OTP, "MAX_VERIFY_ATTEMPTS": 2}
    send(client)
    pin = outbox[0].pin
    for _ in range(2):
        verify(client, wrong(pin))
    response = verify(client, pin)  # right, but the attempts are spent
    assert text(response, "id_code_error") == "Invalid or expired code."
    assert OtpAttempt.objects.get().status == AttemptStatus.EXHAUSTED


def test_a_failed_verify_waits_out_the_failure_floor(client, outbox, settings, monkeypatch):
    settings.OTP = {**settings.OTP, "VERIFY_FAILURE_MIN_SECONDS": 5, "VERIFY_FAILURE_MAX_SECONDS": 5}
    slept: list[float] = []
    monkeypatch.setattr(services, "_sleep", slept.append)
    send(client)
    verify(client, wrong(outbox[0].pin))
    assert len(slept) == 1 and 4 < slept[0] <= 5
    assert verify(client, outbox[0].pin).status_code == 302
    assert len(slept) == 1  # a success is not padded


@pytest.mark.parametrize(
    ("typed", "message"),
    [("", "Enter the code we sent you."), ("12a456", "Enter the 6 digits of the code."), ("1234", None)],
)
def test_a_malformed_code_is_an_error_of_its_field_and_counts_nothing(client, outbox, typed, message):
    send(client)
    response = verify(client, typed)
    assert text(response, "id_code_error") == (message or "Enter the 6 digits of the code.")
    assert OtpAttempt.objects.get().verify_slots_used == 0


def test_spaces_and_full_width_digits_are_the_same_code(client, outbox):
    send(client)
    pin = outbox[0].pin
    spaced = f" {pin[:3]} {pin[3:]} "
    assert verify(client, spaced).status_code == 302

    other = Client()
    send(other, OTHER_PHONE)
    full_width = "".join(chr(ord(d) + 0xFEE0) for d in outbox[-1].pin)
    assert verify(other, full_width).status_code == 302


# -- the resend button --------------------------------------------------------------


@pytest.fixture
def cooldown(settings):
    settings.OTP = {**settings.OTP, "RESEND_COOLDOWN_SECONDS": 60, "RESEND_COOLDOWN_MAX_SECONDS": 900}


def test_the_resend_button_shows_the_wait_and_the_server_refuses_it_meanwhile(client, outbox, cooldown):
    now = time.time()
    with time_machine.travel(now, tick=False):
        send(client)
        code_page = client.get(VERIFY)
        assert by_id(code_page, "otp-resend")["data-wait"] == "60"
        assert text(code_page, "otp-resend-status") == "You can ask for a new code in 1 minute."
        assert by_id(code_page, "otp-resend")["aria-describedby"] == "otp-resend-status"

        refused = client.post(RESEND)
        assert refused.status_code == 429 and refused["Retry-After"] == "60"
        message = "Too many requests. Please try again later. You can try again in 1 minute."
        assert text(refused, "otp-resend-error") == message
        assert message in text(refused, "otp-error-summary")
        assert find(refused, "a", href="#otp-resend")
        assert by_id(refused, "otp-resend")["aria-describedby"].split() == ["otp-resend-status", "otp-resend-error"]
        assert len(outbox) == 1

    with time_machine.travel(now + 61, tick=False):
        assert by_id(client.get(VERIFY), "otp-resend")["data-wait"] == "0"
        response = client.post(RESEND)
        assert response.status_code == 302 and response["Location"] == VERIFY
        assert [m.pin for m in outbox] == [outbox[0].pin] * 2  # the same code again
        code_page = client.get(VERIFY)
        assert text(code_page, "otp-notice") == "We sent the code again to +1 415-555-2671."
        # The second send doubles the wait.
        assert by_id(code_page, "otp-resend")["data-wait"] == "120"
        assert verify(client, outbox[0].pin).status_code == 302


def test_resend_after_the_code_died_sends_a_new_one(client, outbox, settings):
    settings.OTP = {**settings.OTP, "MAX_VERIFY_ATTEMPTS": 1}
    send(client)
    verify(client, wrong(outbox[0].pin))  # the one attempt: the code is dead
    assert client.post(RESEND).status_code == 302
    assert len(outbox) == 2 and outbox[1].pin_id != outbox[0].pin_id
    assert verify(client, outbox[1].pin).status_code == 302


# -- limits and outages -------------------------------------------------------------


def test_the_ip_send_bucket_is_shared_with_the_api(client, outbox, otp_api, settings):
    settings.OTP = {**settings.OTP, "IP_SEND_RATE": "5/15m"}
    for _ in range(3):
        assert otp_api.send().status_code == 200
    assert send(client).status_code == 302
    assert client.post(RESEND).status_code == 302  # a resend counts as a send
    refused = send(client, OTHER_PHONE)
    assert refused.status_code == 429 and refused["Retry-After"].isdigit()
    assert "Too many requests. Please try again later. You can try again in" in text(refused, "otp-error-summary")
    assert otp_api.send(OTHER_PHONE).status_code == 429
    assert len(outbox) == 5


def test_the_ip_verify_bucket_is_shared_with_the_api(client, outbox, otp_api, settings):
    settings.OTP = {**settings.OTP, "IP_VERIFY_RATE": "2/5m"}
    send(client)
    pin = outbox[0].pin
    assert otp_api.verify(wrong(pin)).status_code == 401
    assert verify(client, wrong(pin)).status_code == 200
    refused = verify(client, pin)
    assert refused.status_code == 429
    assert "Too many requests." in text(refused, "otp-error-summary")
    assert "id_code_error" not in page(refused).texts  # a limit, not a wrong code
    assert OtpAttempt.objects.get().status == AttemptStatus.PENDING


def accept_good_token(request: HttpRequest, token: str) -> bool:
    """A challenge verifier for the tests: it accepts the token "good" only."""
    CHALLENGES.append((request.method, token))
    return token == "good"


CHALLENGES: list[tuple[str | None, str]] = []


def test_the_send_challenge_applies_to_the_pages(client, outbox, settings):
    settings.OTP = {**settings.OTP, "SEND_CHALLENGE_VERIFIER": "tests.test_web.accept_good_token"}
    CHALLENGES.clear()
    response = send(client)
    assert response.status_code == 200
    assert "The challenge response is missing or invalid." in text(response, "otp-error-summary")
    assert send(client, challengeToken="bad").status_code == 200
    assert outbox == []
    assert send(client, challengeToken="good").status_code == 302
    assert client.post(RESEND).status_code == 200  # the resend button needs one too
    assert client.post(RESEND, {"challengeToken": "good"}).status_code == 302
    assert CHALLENGES == [("POST", "bad"), ("POST", "good"), ("POST", "good")]
    assert len(outbox) == 2
    spanish = send(Client(headers={"Accept-Language": "es"}), OTHER_PHONE)
    assert "Falta la respuesta de verificación anti-bots o no es válida." in text(spanish, "otp-error-summary")


def test_a_start_page_reads_the_challenge_token_from_its_widgets_field(client, outbox, settings):
    settings.OTP = {**settings.OTP, "SEND_CHALLENGE_VERIFIER": "tests.test_web.accept_good_token"}
    page_url = "/turnstile-phone/"
    assert client.post(page_url, {"phone_number": PHONE, "challengeToken": "good"}).status_code == 200
    assert client.post(page_url, {"phone_number": PHONE, "cf-turnstile-response": "good"}).status_code == 302
    assert len(outbox) == 1


def test_a_spent_budget_is_a_503_with_the_wait(client, outbox, settings):
    settings.OTP = {**settings.OTP, "MAX_SENDS_PER_HOUR": 1}
    send(client)
    response = send(Client(), OTHER_PHONE)
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    summary = text(response, "otp-error-summary")
    assert "The verification service is temporarily unavailable. Please try again later." in summary
    assert "You can try again in" in summary


def test_a_provider_outage_is_a_503_page_without_a_trace(client, outbox):
    locmem.fail_next_send(ProviderUnavailable("upstream 502 at 10.0.0.7"))
    response = send(client)
    assert response.status_code == 503
    assert "The verification service is temporarily unavailable." in text(response, "otp-error-summary")
    assert "10.0.0.7" not in response.content.decode() and "Traceback" not in response.content.decode()
    assert "sessionid" not in response.cookies


def test_a_database_outage_is_a_503_page_with_the_wait(client, monkeypatch, caplog):
    def down(*args, **kwargs):
        raise OperationalError("could not connect to server at db.internal")

    monkeypatch.setattr(services, "send_code", down)
    response = send(client)
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert text(response, "otp-error-summary").endswith("You can try again in 30 seconds.")
    assert "db.internal" not in response.content.decode()
    assert any(getattr(r, "otp_event", {}).get("event") == "otp_database_error" for r in caplog.records)


def test_a_bug_stays_a_500(outbox):
    locmem.fail_next_send(RuntimeError("bug with secret details"))
    response = Client(raise_request_exception=False).post(START, {"phone_number": PHONE})
    assert response.status_code == 500 and b"secret details" not in response.content


# -- CSRF, sessions and where the visitor goes next ---------------------------------


def test_csrf_is_enforced(outbox):
    client = Client(enforce_csrf_checks=True)
    assert client.post(START, {"phone_number": PHONE}).status_code == 403
    assert outbox == []
    token = find(client.get(START), "input", name="csrfmiddlewaretoken")[0]["value"]
    assert client.post(START, {"phone_number": PHONE, "csrfmiddlewaretoken": token}).status_code == 302
    assert client.post(VERIFY, {"code": outbox[0].pin}).status_code == 403
    assert client.post(RESEND).status_code == 403
    token = find(client.get(VERIFY), "input", name="csrfmiddlewaretoken")[0]["value"]
    assert client.post(VERIFY, {"code": outbox[0].pin, "csrfmiddlewaretoken": token}).status_code == 302


def test_csrf_is_enforced_without_the_middleware(outbox, settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "django.middleware.csrf.CsrfViewMiddleware"]
    assert Client(enforce_csrf_checks=True).post(START, {"phone_number": PHONE}).status_code == 403
    assert outbox == []


def test_the_start_page_creates_no_session(client):
    response = client.get(START)
    assert response.status_code == 200
    # Only the CSRF cookie, which the form's protection needs; no session.
    assert set(response.cookies) == {"csrftoken"}
    assert not Session.objects.exists()


def test_a_session_starts_once_a_code_is_sent(client, outbox):
    send(client, "hello")
    assert not Session.objects.exists()
    response = send(client)
    assert "sessionid" in response.cookies
    assert client.session[PENDING_KEY]["phone"] == PHONE


def test_the_session_key_changes_when_the_code_verifies(client, outbox):
    send(client)
    before = client.session.session_key
    verify(client, wrong(outbox[0].pin))
    assert client.session.session_key == before  # a failure changes nothing
    verify(client, outbox[0].pin)
    assert client.session.session_key != before
    assert not Session.objects.filter(session_key=before).exists()
    assert PENDING_KEY not in client.session


@pytest.mark.parametrize(
    ("next_url", "secure", "goes_to"),
    [
        ("/account/phone?tab=1", False, "/account/phone?tab=1"),
        ("http://testserver/account", False, "http://testserver/account"),
        ("https://testserver/account", True, "https://testserver/account"),
        ("http://testserver/account", True, DONE),  # https page, http target
        ("https://evil.example/account", False, DONE),
        ("//evil.example/account", False, DONE),
        ("/\\evil.example/account", False, DONE),
        ("javascript:alert(1)", False, DONE),
        ("", False, DONE),
    ],
)
def test_only_a_safe_next_is_followed(outbox, next_url, secure, goes_to):
    client = Client()
    start = client.get(START, {"next": next_url}, secure=secure)
    hidden = find(start, "input", name="next")
    assert [h["value"] for h in hidden] == ([next_url] if next_url else [])
    client.post(START, {"phone_number": PHONE, "next": next_url}, secure=secure)
    response = client.post(VERIFY, {"code": outbox[-1].pin}, secure=secure)
    assert response.status_code == 302 and response["Location"] == goes_to


def test_the_success_url_setting(client, outbox, settings):
    settings.OTP = {**settings.OTP, "WEB_SUCCESS_URL": AFTER}
    send(client)
    response = verify(client, outbox[0].pin)
    assert response["Location"] == AFTER
    assert client.get(AFTER).json() == {"phone": PHONE, "purpose": "default"}


# -- the helper a site's next view calls --------------------------------------------


def verified_through_the_pages(client: Client, outbox) -> None:
    send(client)
    assert verify(client, outbox[-1].pin).status_code == 302


def test_the_verified_number_is_read_once(client, outbox):
    verified_through_the_pages(client, outbox)
    assert client.get(AFTER).json() == {"phone": PHONE, "purpose": "default"}
    assert client.get(AFTER).json() == {"phone": None}


def test_the_verified_number_is_for_the_purpose_of_the_start_page(client, outbox):
    assert client.post("/change-phone/", {"phone_number": PHONE}).status_code == 302
    assert verify(client, outbox[0].pin).status_code == 302
    assert OtpAttempt.objects.get().purpose == "phone_change"
    assert client.get(AFTER, {"purpose": "phone_change"}).json() == {"phone": PHONE, "purpose": "phone_change"}


def test_a_read_for_another_purpose_gets_nothing_and_uses_it_up(client, outbox):
    verified_through_the_pages(client, outbox)
    assert client.get(AFTER, {"purpose": "phone_change"}).json() == {"phone": None}
    assert client.get(AFTER).json() == {"phone": None}


def test_the_verified_number_lives_as_long_as_a_verification_token(client, outbox, settings):
    settings.OTP = {**settings.OTP, "VERIFICATION_TOKEN_MAX_AGE_SECONDS": 60}
    verified_through_the_pages(client, outbox)
    with time_machine.travel(time.time() + 61, tick=False):
        assert client.get(AFTER).json() == {"phone": None}


def test_the_verified_number_is_for_the_user_who_verified_it(outbox):
    user_model: Any = get_user_model()
    alice = user_model.objects.create_user("alice", password="pw")
    received = []

    def on_verified(sender, attempt, phone, user, purpose, **kwargs):
        received.append((phone, user))

    signals.phone_verified.connect(on_verified)
    try:
        client = Client()
        client.force_login(alice)
        verified_through_the_pages(client, outbox)
    finally:
        signals.phone_verified.disconnect(on_verified)
    assert received == [(PHONE, alice)]
    assert OtpAttempt.objects.get().user == alice
    assert client.get(AFTER).json() == {"phone": PHONE, "purpose": "default"}

    # Verified while anonymous, then logged in: not handed to the user.
    anonymous = Client()
    verified_through_the_pages(anonymous, outbox)
    anonymous.force_login(alice)
    assert VERIFIED_KEY in anonymous.session  # login kept the session's data...
    assert anonymous.get(AFTER).json() == {"phone": None}  # ...but the proof is not alice's


def test_a_copied_proof_is_refused_after_its_one_use(client, outbox):
    verified_through_the_pages(client, outbox)
    stolen = client.session[VERIFIED_KEY]
    assert client.get(AFTER).json()["phone"] == PHONE
    session = client.session
    session[VERIFIED_KEY] = stolen
    session.save()
    assert client.get(AFTER).json() == {"phone": None}


# -- markup -------------------------------------------------------------------------


def test_the_number_field(client):
    start = client.get(START)
    (field,) = find(start, "input", name="phone_number")
    assert field["type"] == "tel" and field["autocomplete"] == "tel" and field["id"] == "id_phone_number"
    assert "autofocus" in field and "aria-invalid" not in field
    assert field["aria-describedby"] == "id_phone_number_helptext"
    assert find(start, "label", **{"for": "id_phone_number"})
    assert by_id(start, "otp-send")["type"] == "submit"
    assert "otp-error-summary" not in page(start).texts


def test_the_code_field(client, outbox, settings):
    settings.OTP = {**settings.OTP, "PIN_LENGTH": 8}
    send(client)
    code_page = client.get(VERIFY)
    fields = [a for a in find(code_page, "input") if a.get("type") != "hidden"]
    assert len(fields) == 1  # one field, never one box per digit
    (field,) = fields
    assert field == {
        "type": "text",
        "name": "code",
        "id": "id_code",
        "inputmode": "numeric",
        "autocomplete": "one-time-code",
        "pattern": "[0-9]*",
        "maxlength": "8",
        "autofocus": None,
        "required": None,
        "aria-describedby": "id_code_helptext",
    }
    assert text(code_page, "id_code_helptext") == "The code has 8 digits."
    assert find(code_page, "label", **{"for": "id_code"})
    assert by_id(code_page, "otp-resend-form")["action"] == RESEND
    assert by_id(code_page, "otp-verify-form")["action"] == VERIFY


def test_the_pages_are_csp_friendly_and_not_cached(client, outbox):
    send(client)
    code_page = client.get(VERIFY)
    scripts = find(code_page, "script")
    assert scripts == [{"src": "/static/otp/web/webotp.js", "defer": None}]
    html = code_page.content.decode()
    assert "<script>" not in html and " on" not in html.replace(" one-time", "")
    assert "no-store" in code_page["Cache-Control"] and "no-store" in client.get(START)["Cache-Control"]


def test_html_lang_follows_the_language(client):
    assert find(client.get(START), "html", lang="en")
    assert find(client.get(START, headers={"Accept-Language": "es"}), "html", lang="es")


def test_spanish(outbox, cooldown):
    client = Client(headers={"Accept-Language": "es"})
    start = client.get(START)
    assert text(start, "otp-send") == "Enviar código"
    assert find(start, "label", **{"for": "id_phone_number"})
    assert "Número de teléfono" in start.content.decode()
    assert text(send(client, "hola"), "id_phone_number_error") == "Introduzca un número de teléfono válido."
    send(client)
    code_page = client.get(VERIFY)
    assert text(code_page, "otp-notice") == "Hemos enviado un código a +1 415-555-2671."
    assert text(code_page, "otp-resend-status") == "Puede pedir un código nuevo dentro de 1 minuto."
    countdown = by_id(code_page, "otp-resend-status")["data-countdown-text"]
    assert countdown == "Puede pedir un código nuevo dentro de {time}."
    assert text(verify(client, wrong(outbox[0].pin)), "id_code_error") == "Código no válido o caducado."
    refused = client.post(RESEND)
    assert text(refused, "otp-resend-error") == (
        "Demasiadas solicitudes. Inténtelo de nuevo más tarde. Podrá volver a intentarlo dentro de 1 minuto."
    )
    verify(client, outbox[0].pin)
    assert text(client.get(DONE), "otp-verified-phone") == "+1 415-555-2671 está verificado."


def test_a_site_atomic_requests_do_not_hide_the_row(client, outbox, settings):
    settings.DATABASES["default"]["ATOMIC_REQUESTS"] = True
    try:
        assert send(client).status_code == 302
    finally:
        settings.DATABASES["default"]["ATOMIC_REQUESTS"] = False
    assert OtpAttempt.objects.get().status == AttemptStatus.PENDING


def test_a_site_base_template_frames_the_pages(client, settings, tmp_path):
    (tmp_path / "site_base.html").write_text(
        '<html lang="en"><body><nav id="site-nav">Shop</nav>{% block content %}{% endblock %}</body></html>'
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    settings.OTP = {**settings.OTP, "WEB_BASE_TEMPLATE": "site_base.html"}
    start = client.get(START)
    assert text(start, "site-nav") == "Shop" and find(start, "input", name="phone_number")

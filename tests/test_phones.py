"""Phone input: which forms are one number, which are refused, and what an accepted one becomes."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otp import services
from otp.exceptions import InvalidPhoneNumber
from otp.models import AttemptStatus, OtpAttempt, PhoneState, RateCounter
from otp.validators import phones
from otp.validators.phones import normalize_phone
from tests.conftest import PHONE

E164 = re.compile(r"\+[1-9][0-9]{1,14}")
NOT_VALID = {"error": "phoneNumber is not a valid phone number.", "code": "invalid_phone_number"}
NOT_INTERNATIONAL = {
    "error": "phoneNumber must be in international format, starting with + and the country code.",
    "code": "invalid_phone_number",
}


def full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def in_digits_of(text: str, zero: str) -> str:
    return "".join(chr(ord(zero) + int(ch)) if ch.isdigit() else ch for ch in text)


# What people type or paste, and what a front end sends from another keyboard.
GOOD = [
    "+14155552671",
    "+1 415 555 2671",
    "+1 (415) 555-2671",
    "+1-415-555-2671",
    "+1.415.555.2671",
    " +1 415 555 2671 ",
    "+1\u00a0415\u00a0555\u00a02671",  # non-breaking spaces
    "+1\u3000415\u3000555\u30002671",  # ideographic spaces
    full_width("+1 (415) 555-2671"),
    "\uff0b14155552671",  # the full-width plus alone
    in_digits_of("+1 415 555 2671", "\u0660"),  # Arabic-Indic digits
    in_digits_of("+1 415 555 2671", "\u06f0"),  # Persian digits
    in_digits_of("+1 415 555 2671", "\u0966"),  # Devanagari digits
]

BAD = [
    "++14155552671",
    "\uff0b\uff0b14155552671",  # two full-width pluses are two pluses
    "+1 415 555 2671+",
    "+1+4155552671",
    "+1 415 555 2671 ext 3",
    "+1 415 555 2671 x3",
    "+1 415 555 2671;ext=3",
    "+1/415/555/2671",
    "+1 415 555 2671#",
    "+1*415*555*2671",
    "+1 415_555_2671",
    "+1 415 555 2671,",
    "+1 415 555 2671\u0085",  # a C1 control character
    "+1 415 555 2671\u2028",
    "+1\u200b4155552671",  # zero-width space
    "+1\u00ad4155552671",  # soft hyphen
    "+1 415\u2013555\u20132671",  # en dashes
    "+1 415 555 26 seven 1",
    "+1 (415) 555-2671 (mobile)",
]


@pytest.mark.parametrize("raw", GOOD)
def test_good_forms_are_one_number(raw):
    assert normalize_phone(raw) == PHONE


@pytest.mark.parametrize("raw", BAD)
def test_bad_forms_are_refused(raw):
    with pytest.raises(InvalidPhoneNumber) as refused:
        normalize_phone(raw)
    assert str(refused.value) == NOT_VALID["error"]


@pytest.mark.parametrize("raw", ["tel:+14155552671", "1+4155552671", "(+1) 415 555 2671"])
def test_without_a_leading_plus_the_number_is_not_international(raw):
    with pytest.raises(InvalidPhoneNumber) as refused:
        normalize_phone(raw)
    assert str(refused.value) == NOT_INTERNATIONAL["error"]


def test_a_national_number_with_a_default_region_follows_the_same_rules():
    assert normalize_phone("(415) 555-2671", "US") == PHONE
    with pytest.raises(InvalidPhoneNumber):
        normalize_phone("(415) 555-2671 ext 3", "US")
    with pytest.raises(InvalidPhoneNumber):
        normalize_phone("1+4155552671", "US")


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["++14155552671", "+1 415 555 2671 ext 3", "+1/415/555/2671"])
def test_the_services_refuse_what_the_api_refuses(outbox, raw):
    with pytest.raises(InvalidPhoneNumber):
        services.send_code(raw)
    assert outbox == [] and not OtpAttempt.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/send-otp", "/resend-otp"])
@pytest.mark.parametrize("raw", [*BAD, "tel:+14155552671"])
def test_bad_forms_get_a_400_through_the_api_and_count_nothing(otp_api, outbox, settings, production_limits, path, raw):
    settings.OTP = {**production_limits, "IP_SEND_RATE": "1/15m"}
    response = otp_api.post(path, {"phoneNumber": raw}, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 400
    assert response.json() in (NOT_VALID, NOT_INTERNATIONAL)
    assert outbox == []
    assert not OtpAttempt.objects.exists() and not PhoneState.objects.exists() and not RateCounter.objects.exists()
    # The IP's bucket was not counted either.
    assert otp_api.post(path, {"phoneNumber": PHONE}, REMOTE_ADDR="203.0.113.7").status_code == 200


@pytest.mark.django_db
def test_a_bad_form_on_verify_counts_no_failure(otp_api, outbox):
    otp_api.send()
    response = otp_api.post("/verify-otp", {"phoneNumber": "++14155552671", "pin": outbox[0].pin})
    assert response.status_code == 400 and response.json() == NOT_VALID
    attempt = OtpAttempt.objects.get()  # the right PIN never reached the provider
    assert attempt.status == AttemptStatus.PENDING and attempt.verify_slots_used == 0


def test_a_repeated_number_is_parsed_once(monkeypatch):
    phones._parse.cache_clear()
    calls = []
    parse = phonenumbers.parse

    def counting_parse(*args: Any) -> Any:
        calls.append(args)
        return parse(*args)

    monkeypatch.setattr(phonenumbers, "parse", counting_parse)
    for _ in range(3):
        assert normalize_phone("+1 (415) 555-2671") == PHONE
        with pytest.raises(InvalidPhoneNumber):
            normalize_phone("+1415555267")
    assert len(calls) == 2


# -- properties -------------------------------------------------------------------

SEPARATORS = [" ", "-", ".", "(", ")", "\u00a0", "\u3000", "\uff0d", "\uff08", "\uff09"]
# Characters a hostile or careless client might mix in.
NOISE = ["+", "\uff0b", "/", "#", "*", "x", "e", ":", ";", ",", "_", "\u2013", "\u200b", "\x85", "\u0661", "\uff11"]


@st.composite
def formatted_numbers(draw: st.DrawFn) -> str:
    """A valid number, its digits in one script, separators sprinkled between them."""
    region = draw(st.sampled_from(["US", "GB", "DE", "FR", "IN", "BR", "JP", "EG", "ES", "AU"]))
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert number is not None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    zero = draw(st.sampled_from(["0", "\uff10", "\u0660", "\u06f0", "\u0966"]))
    plus = draw(st.sampled_from(["+", "\uff0b"]))
    parts = [plus]
    for digit in e164[1:]:
        parts.append(draw(st.sampled_from(["", "", "", *SEPARATORS])))
        parts.append(chr(ord(zero) + int(digit)))
    return "".join(parts)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formatted_numbers())
def test_every_format_of_a_number_normalises_to_its_e164(raw):
    e164 = normalize_phone(raw)
    assert E164.fullmatch(e164)
    assert normalize_phone(e164) == e164
    assert e164 == normalize_phone(unicodedata.normalize("NFKC", raw).translate({ord(s): None for s in " -.()"}))


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        formatted_numbers(),
        st.text(st.sampled_from(["+", "1", "4", "5", "2", "6", "7", *SEPARATORS, *NOISE]), max_size=30),
        formatted_numbers().flatmap(
            lambda raw: st.tuples(st.integers(0, len(raw)), st.sampled_from(NOISE)).map(
                lambda cut: raw[: cut[0]] + cut[1] + raw[cut[0] :]
            )
        ),
    )
)
@example("++14155552671")
@example("+1 415 555 2671 ext 3")
def test_whatever_is_accepted_is_e164_and_idempotent(raw):
    try:
        e164 = normalize_phone(raw)
    except InvalidPhoneNumber:
        return
    assert E164.fullmatch(e164)
    assert normalize_phone(e164) == e164
    text = unicodedata.normalize("NFKC", raw).strip(" ")
    assert text.count("+") <= 1 and text.find("+") <= 0
    assert all(ch.isdecimal() or ch in "+ -.()" for ch in text)

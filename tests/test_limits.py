"""Abuse resistance: every limit, its reset and its window edge, with time controlled."""

from __future__ import annotations

import logging
from datetime import timedelta

import phonenumbers
import pytest
import time_machine
from django.utils import timezone

from otp.limits.ip import parse_rate
from otp.models import AttemptStatus, OtpAttempt, PhoneState, RateCounter
from tests.conftest import PHONE

pytestmark = pytest.mark.django_db

LIMITED = {"error": "Too many requests. Please try again later.", "code": "rate_limited"}
UNAVAILABLE = {
    "error": "The verification service is temporarily unavailable. Please try again later.",
    "code": "temporarily_unavailable",
}
SAME_PREFIX = [f"+1415555{n:04d}" for n in range(100, 130)]  # prefix +1415555, valid US numbers


def phones(count: int, area: str = "415") -> list[str]:
    """Distinct valid numbers with distinct prefixes (so only the limit under test applies)."""
    return [f"+1{area}{200 + i:03d}{1000 + i:04d}" for i in range(count)]


@pytest.fixture
def limits(settings, production_limits):
    """Production defaults, then the overrides a test asks for."""

    def apply(**overrides):
        settings.OTP = {**production_limits, **overrides}

    return apply


@pytest.fixture
def later():
    """Move the clock forward by some seconds (both time.time and timezone.now)."""
    travellers = []

    def move(seconds: float):
        traveller = time_machine.travel(timezone.now() + timedelta(seconds=seconds), tick=False)
        traveller.start()
        travellers.append(traveller)

    yield move
    for traveller in reversed(travellers):
        traveller.stop()


def send(otp_api, phone, ip="203.0.113.7", **headers):
    return otp_api.post("/send-otp", {"phoneNumber": phone}, REMOTE_ADDR=ip, **headers)


def verify(otp_api, phone, pin, ip="203.0.113.7", **headers):
    return otp_api.post("/verify-otp", {"phoneNumber": phone, "pin": pin}, REMOTE_ADDR=ip, **headers)


def wrong(pin: str) -> str:
    return "000000" if pin != "000000" else "111111"


def assert_limited(response):
    assert response.status_code == 429, response.content
    assert response.json() == LIMITED
    assert int(response["Retry-After"]) % 60 == 0 and int(response["Retry-After"]) >= 60


# -- defaults ---------------------------------------------------------------------


def test_defaults_are_on(otp_api, outbox, production_limits):
    numbers = phones(6)
    for number in numbers[:5]:
        assert send(otp_api, number).status_code == 200
    assert_limited(send(otp_api, numbers[5]))  # the seed's floor: 5 sends per IP per 15 minutes
    assert_limited(send(otp_api, numbers[0], ip="198.51.100.1"))  # the phone's cooldown
    assert len(outbox) == 5


# -- per IP -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("5/15m", (5, 900)), ("10/m", (10, 60)), ("3/2h", (3, 7200)), ("1/d", (1, 86400)), ("7/30s", (7, 30))],
)
def test_rates_are_read_as_django_ratelimit_writes_them(rate, parsed):
    assert parse_rate(rate) == parsed


def test_ip_send_limit_and_its_window(otp_api, outbox, limits, later):
    limits(IP_SEND_RATE="3/15m")
    numbers = phones(5)
    for number in numbers[:3]:
        assert send(otp_api, number).status_code == 200
    assert_limited(send(otp_api, numbers[3]))
    assert send(otp_api, numbers[3], ip="203.0.113.8").status_code == 200  # another client
    later(15 * 60 + 1)
    assert send(otp_api, numbers[4]).status_code == 200
    assert len(outbox) == 5


def test_ip_verify_limit(otp_api, outbox, limits):
    limits(IP_VERIFY_RATE="3/5m", MAX_VERIFY_ATTEMPTS=10)
    send(otp_api, PHONE)
    for _ in range(3):
        assert verify(otp_api, PHONE, wrong(outbox[0].pin)).status_code == 401
    assert_limited(verify(otp_api, PHONE, outbox[0].pin))
    assert verify(otp_api, PHONE, outbox[0].pin, ip="198.51.100.2").status_code == 200


def test_spoofed_forwarded_for_is_ignored_without_trusted_proxies(otp_api, outbox, limits):
    limits(IP_SEND_RATE="2/15m")
    numbers = phones(3)
    for i, number in enumerate(numbers):
        response = send(otp_api, number, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
    assert_limited(response)
    assert len(outbox) == 2


def test_trusted_proxy_takes_the_address_it_appended(otp_api, outbox, limits):
    limits(IP_SEND_RATE="2/15m", TRUSTED_PROXY_COUNT=1)
    numbers = phones(4)
    # The client rotates a spoofed left part; the proxy appends the real address.
    for i, number in enumerate(numbers[:3]):
        response = send(otp_api, number, ip="10.1.1.1", HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 198.51.100.9")
    assert_limited(response)
    assert send(otp_api, numbers[3], ip="10.1.1.1", HTTP_X_FORWARDED_FOR="198.51.100.10").status_code == 200


def test_ipv6_clients_share_their_slash_64(otp_api, outbox, limits):
    limits(IP_SEND_RATE="2/15m")
    numbers = phones(3)
    send(otp_api, numbers[0], ip="2001:db8:1:2::1")
    send(otp_api, numbers[1], ip="2001:db8:1:2::ffff")
    assert_limited(send(otp_api, numbers[2], ip="2001:db8:1:2:abcd::9"))


def test_limiter_cache_down_fails_closed(otp_api, outbox, limits, settings):
    limits()
    settings.CACHES = {
        **settings.CACHES,
        "broken": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        },
    }
    settings.RATELIMIT_USE_CACHE = "broken"
    response = send(otp_api, PHONE)
    assert response.status_code == 503 and response.json() == UNAVAILABLE
    assert outbox == [] and not OtpAttempt.objects.exists()


# -- per phone ----------------------------------------------------------------------


def test_cooldown_grows_and_releases(otp_api, outbox, limits, later):
    limits(IP_SEND_RATE=None)
    assert send(otp_api, PHONE).status_code == 200
    assert_limited(send(otp_api, PHONE))
    later(61)
    assert send(otp_api, PHONE).status_code == 200
    later(61)
    response = send(otp_api, PHONE)  # the second cooldown is 120 s
    assert_limited(response)
    assert int(response["Retry-After"]) == 60
    later(60)
    assert send(otp_api, PHONE).status_code == 200
    assert len(outbox) == 3


def test_daily_cap_is_a_rolling_window(otp_api, outbox, limits, later):
    limits(IP_SEND_RATE=None, RESEND_COOLDOWN_SECONDS=0, MAX_SENDS_PER_PHONE_PER_DAY=3)
    send(otp_api, PHONE)  # t = 0
    later(23 * 3600)
    send(otp_api, PHONE)  # t = 23 h
    send(otp_api, PHONE)  # t = 23 h
    assert_limited(send(otp_api, PHONE))
    later(3600 + 1)  # t = 24 h: only the first send left the window
    assert send(otp_api, PHONE).status_code == 200
    assert_limited(send(otp_api, PHONE))
    assert len(outbox) == 4


def test_phone_and_ip_buckets_are_independent(otp_api, outbox, limits):
    limits(IP_SEND_RATE="100/15m", RESEND_COOLDOWN_SECONDS=0, MAX_SENDS_PER_PHONE_PER_DAY=2)
    for i in range(2):
        assert send(otp_api, PHONE, ip=f"198.51.100.{i}").status_code == 200
    assert_limited(send(otp_api, PHONE, ip="198.51.100.99"))  # a fresh IP does not help the phone


def test_consecutive_failures_lock_the_phone_across_pins(otp_api, outbox, limits, later):
    limits(
        IP_SEND_RATE=None,
        IP_VERIFY_RATE=None,
        RESEND_COOLDOWN_SECONDS=0,
        MAX_VERIFY_ATTEMPTS=3,
        MAX_FAILURES_PER_PHONE=5,
        FAILURE_BACKOFF_SECONDS=60,
        FAILURE_BACKOFF_MAX_SECONDS=3600,
    )
    send(otp_api, PHONE)
    for _ in range(3):
        verify(otp_api, PHONE, wrong(outbox[-1].pin))
    send(otp_api, PHONE)  # a new PIN does not reset the count
    for _ in range(2):
        assert verify(otp_api, PHONE, wrong(outbox[-1].pin)).status_code == 401
    assert PhoneState.objects.get(phone=PHONE).consecutive_failures == 5
    assert_limited(verify(otp_api, PHONE, outbox[-1].pin))  # even the right PIN waits
    assert_limited(send(otp_api, PHONE))
    later(61)  # backoff is time-bounded
    assert send(otp_api, PHONE).status_code == 200
    assert verify(otp_api, PHONE, wrong(outbox[-1].pin)).status_code == 401
    response = verify(otp_api, PHONE, outbox[-1].pin)
    assert_limited(response)  # the 6th failure doubled the backoff
    assert int(response["Retry-After"]) == 120
    later(121)
    assert verify(otp_api, PHONE, outbox[-1].pin).status_code == 200
    state = PhoneState.objects.get(phone=PHONE)
    assert (state.consecutive_failures, state.locked_until) == (0, 0)  # a success resets


def test_failures_below_the_cap_are_reset_by_a_success(otp_api, outbox, limits):
    limits(IP_VERIFY_RATE=None, MAX_FAILURES_PER_PHONE=5)
    send(otp_api, PHONE)
    verify(otp_api, PHONE, wrong(outbox[0].pin))
    verify(otp_api, PHONE, outbox[0].pin)
    assert PhoneState.objects.get(phone=PHONE).consecutive_failures == 0


# -- per prefix, per country, global ------------------------------------------------


def test_prefix_velocity_blocks_the_prefix_for_hours(otp_api, outbox, limits, later):
    limits(IP_SEND_RATE=None, MAX_SENDS_PER_PREFIX_PER_HOUR=3, PREFIX_BLOCK_SECONDS=12 * 3600)
    for number in SAME_PREFIX[:3]:
        assert send(otp_api, number).status_code == 200
    assert_limited(send(otp_api, SAME_PREFIX[3]))
    assert send(otp_api, phones(1)[0]).status_code == 200  # another prefix is unaffected
    later(2 * 3600)  # the hourly window has passed, the block has not
    assert_limited(send(otp_api, SAME_PREFIX[4]))
    later(10 * 3600 + 1)
    assert send(otp_api, SAME_PREFIX[5]).status_code == 200
    assert len(outbox) == 5


def test_a_blocked_prefix_spends_no_budget(otp_api, outbox, limits):
    limits(IP_SEND_RATE=None, MAX_SENDS_PER_PREFIX_PER_HOUR=2, MAX_SENDS_PER_HOUR=100)
    for number in SAME_PREFIX[:10]:
        send(otp_api, number)
    assert RateCounter.objects.get(key="global:hour").count == 2
    assert OtpAttempt.objects.count() == 2  # refused sends leave no row


def test_a_send_refused_by_the_phone_cooldown_spends_no_budget(otp_api, outbox, limits):
    limits(IP_SEND_RATE=None)
    assert send(otp_api, PHONE).status_code == 200
    assert_limited(send(otp_api, PHONE))
    counts = dict(RateCounter.objects.values_list("key", "count"))
    assert counts == {"global:day": 1, "global:hour": 1, "country:US": 1, f"prefix:{PHONE[:-4]}": 1}
    assert OtpAttempt.objects.count() == 1


def test_a_resend_with_nothing_in_flight_counts_once(otp_api, outbox, limits):
    limits(IP_SEND_RATE=None)
    response = otp_api.post("/resend-otp", {"phoneNumber": PHONE}, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200 and len(outbox) == 1
    assert RateCounter.objects.get(key="global:hour").count == 1


def test_country_velocity(otp_api, outbox, limits):
    limits(IP_SEND_RATE=None, MAX_SENDS_PER_COUNTRY_PER_HOUR=3, MAX_SENDS_PER_PREFIX_PER_HOUR=None)
    for number in phones(3):
        assert send(otp_api, number).status_code == 200
    assert_limited(send(otp_api, phones(4)[3]))
    assert send(otp_api, "+447400123456").status_code == 200  # GB is another country


def test_global_budget_fails_closed_and_alerts_once_per_threshold(otp_api, outbox, limits, caplog):
    limits(
        IP_SEND_RATE=None, MAX_SENDS_PER_HOUR=4, MAX_SENDS_PER_PREFIX_PER_HOUR=None, MAX_SENDS_PER_COUNTRY_PER_HOUR=None
    )
    caplog.set_level(logging.INFO, logger="otp.security")
    for number in phones(4):
        assert send(otp_api, number).status_code == 200
    for number in phones(7, area="212")[4:]:
        response = send(otp_api, number)
        assert response.status_code == 503 and response.json() == UNAVAILABLE
        assert int(response["Retry-After"]) >= 60
    assert len(outbox) == 4
    alerts = [
        r.otp_event["percent"] for r in caplog.records if getattr(r, "otp_event", {}).get("event") == "otp_budget_alert"
    ]
    assert alerts == [50, 100]


def test_budget_window_edge_allows_no_double_burst(otp_api, outbox, limits, later):
    limits(
        IP_SEND_RATE=None,
        MAX_SENDS_PER_HOUR=4,
        MAX_SENDS_PER_PREFIX_PER_HOUR=None,
        MAX_SENDS_PER_COUNTRY_PER_HOUR=None,
        MAX_SENDS_PER_DAY=None,
    )
    now = timezone.now()
    later(3600 - now.timestamp() % 3600 - 5)  # 5 s before an hour boundary
    numbers = phones(8)
    for number in numbers[:4]:
        assert send(otp_api, number).status_code == 200
    later(10)  # 5 s into the next fixed window: the sliding estimate still counts them
    assert send(otp_api, numbers[4]).status_code == 503
    assert len(outbox) == 4


# -- destination policy ---------------------------------------------------------------


def example(region: str, number_type: int) -> str:
    number = phonenumbers.example_number_for_type(region, number_type)
    assert number is not None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


T = phonenumbers.PhoneNumberType


@pytest.mark.parametrize(
    ("region", "number_type", "allowed"),
    [
        ("GB", T.MOBILE, True),
        ("FR", T.MOBILE, True),
        ("US", T.FIXED_LINE_OR_MOBILE, True),
        ("GB", T.PREMIUM_RATE, False),
        ("US", T.TOLL_FREE, False),
        ("GB", T.UAN, False),
        ("GB", T.PAGER, False),
        ("GB", T.PERSONAL_NUMBER, False),
        ("GB", T.VOIP, False),
        ("DE", T.FIXED_LINE, False),
        ("FR", T.SHARED_COST, False),
    ],
)
def test_number_types(otp_api, outbox, limits, region, number_type, allowed):
    limits()
    response = send(otp_api, example(region, number_type))
    if allowed:
        assert response.status_code == 200
        assert len(outbox) == 1
    else:
        assert response.status_code == 400
        assert response.json() == {
            "error": "This type of phone number cannot receive codes.",
            "code": "unsupported_destination",
        }
        assert outbox == [] and not OtpAttempt.objects.exists()


def test_allowed_regions(otp_api, outbox, limits):
    limits(ALLOWED_REGIONS=["US", "CA"])
    response = send(otp_api, example("GB", T.MOBILE))
    assert response.status_code == 400
    assert response.json()["error"] == "Phone numbers from this country are not supported."
    assert send(otp_api, PHONE).status_code == 200
    assert len(outbox) == 1


def test_resend_is_checked_against_the_destination_policy(otp_api, outbox, limits):
    limits(ALLOWED_REGIONS=["US"])
    response = otp_api.post("/resend-otp", {"phoneNumber": example("GB", T.MOBILE)})
    assert response.status_code == 400 and outbox == []


# -- resend --------------------------------------------------------------------------


def test_resend_delivers_the_same_pin_under_the_cooldown(otp_api, outbox, limits, later):
    limits(IP_SEND_RATE=None)
    send(otp_api, PHONE)
    assert_limited(otp_api.post("/resend-otp", {"phoneNumber": PHONE}, REMOTE_ADDR="203.0.113.7"))
    later(61)
    response = otp_api.post("/resend-otp", {"phoneNumber": PHONE}, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200 and response.json() == {"message": "OTP sent successfully."}
    assert [m.pin_id for m in outbox] == [outbox[0].pin_id] * 2 and outbox[0].pin == outbox[1].pin
    attempt = OtpAttempt.objects.get()
    assert attempt.resends == 1 and attempt.status == AttemptStatus.PENDING
    assert verify(otp_api, PHONE, outbox[1].pin).status_code == 200


def test_resend_without_a_live_attempt_is_a_send(otp_api, outbox, limits):
    limits()
    response = otp_api.post("/resend-otp", {"phoneNumber": PHONE})
    assert response.status_code == 200 and len(outbox) == 1
    assert OtpAttempt.objects.get().status == AttemptStatus.PENDING


def test_resend_counts_against_the_daily_cap(otp_api, outbox, limits):
    limits(IP_SEND_RATE=None, RESEND_COOLDOWN_SECONDS=0, MAX_SENDS_PER_PHONE_PER_DAY=2)
    send(otp_api, PHONE)
    assert otp_api.post("/resend-otp", {"phoneNumber": PHONE}).status_code == 200
    assert_limited(otp_api.post("/resend-otp", {"phoneNumber": PHONE}))
    assert_limited(send(otp_api, PHONE))
    assert len(outbox) == 2


# -- hygiene ---------------------------------------------------------------------------


def header_names(response) -> set[str]:
    return {name.lower() for name in response.headers}


def test_verify_failures_are_indistinguishable(otp_api, outbox, limits):
    limits(IP_VERIFY_RATE=None, MAX_VERIFY_ATTEMPTS=2)
    other = "+14155550123"
    send(otp_api, PHONE)
    send(otp_api, other)
    used = phones(1, area="646")[0]
    send(otp_api, used)
    verify(otp_api, used, outbox[2].pin)
    cases = [
        verify(otp_api, PHONE, wrong(outbox[0].pin)),  # wrong
        verify(otp_api, "+14155559999", "123456"),  # never sent
        verify(otp_api, used, outbox[2].pin),  # already used
        verify(otp_api, other, outbox[0].pin if outbox[0].pin != outbox[1].pin else wrong(outbox[1].pin)),
    ]
    verify(otp_api, PHONE, wrong(outbox[0].pin))
    cases.append(verify(otp_api, PHONE, outbox[0].pin))  # attempts exhausted
    first = cases[0]
    for response in cases:
        assert (response.status_code, response.json()) == (401, first.json())
        assert header_names(response) == header_names(first)


def test_send_does_not_reveal_history(otp_api, outbox, limits, later):
    limits(IP_SEND_RATE=None)
    fresh, pending, verified = phones(3)
    send(otp_api, pending)
    send(otp_api, verified)
    verify(otp_api, verified, outbox[1].pin)
    later(120)
    answers = [send(otp_api, number) for number in (fresh, pending, verified)]
    assert {(r.status_code, r.content) for r in answers} == {(200, b'{"message":"OTP sent successfully."}')}
    assert len({frozenset(header_names(r)) for r in answers}) == 1


def test_security_events_are_masked(otp_api, outbox, limits, caplog):
    limits()
    caplog.set_level(logging.INFO, logger="otp.security")
    send(otp_api, PHONE)
    verify(otp_api, PHONE, wrong(outbox[0].pin))
    verify(otp_api, PHONE, outbox[0].pin)
    send(otp_api, PHONE)
    events = [r.otp_event for r in caplog.records if hasattr(r, "otp_event")]
    assert [e["event"] for e in events] == [
        "otp_send_requested",
        "otp_send_accepted",
        "authn_otp_fail",
        "authn_otp_success",
        "otp_send_requested",
        "otp_send_blocked",
    ]
    assert {e["phone"] for e in events} == {"+1********71"}
    assert len({e["phone_hash"] for e in events}) == 1
    assert all(e["request_id"] and e["client_ip"] == "203.0.113.7" for e in events)
    text = caplog.text
    for secret in (PHONE, "4155552671", outbox[0].pin, outbox[0].pin_id):
        assert secret not in text


def test_crlf_in_phone_is_refused_and_forges_no_log_line(otp_api, outbox, limits, caplog):
    limits()
    caplog.set_level(logging.DEBUG)
    response = send(otp_api, "+14155552671\r\nevent=otp_send_accepted")
    assert response.status_code == 400
    assert all("\n" not in r.getMessage() for r in caplog.records)


def test_request_id_is_echoed_or_made(otp_api, outbox, limits):
    limits()
    assert send(otp_api, PHONE, HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    made = send(otp_api, PHONE, HTTP_X_REQUEST_ID="bad id\r\n")["X-Request-ID"]
    assert made != "bad id\r\n" and len(made) == 32


def test_a_send_that_read_a_stale_phone_state_reads_it_again(otp_api, outbox, limits, monkeypatch):
    """Compare and swap: a send whose phone changed since it read it cannot record itself on the old state."""
    from otp.limits import counters, phone_state

    limits(IP_SEND_RATE=None)
    before = phone_state.read_phone(PHONE)  # no sends yet
    assert send(otp_api, PHONE).status_code == 200
    count_send, read_phone, reads = counters.count_send, phone_state.read_phone, []

    def counted_with_a_stale_read(counters, now, phone):
        counted, _ = count_send(counters, now, phone)
        reads.append("stale")
        return counted, before

    def fresh_read(phone):
        if reads:  # a read after the stale one (SQLite's count_send reads once before)
            reads.append("fresh")
        return read_phone(phone)

    monkeypatch.setattr(counters, "count_send", counted_with_a_stale_read)
    monkeypatch.setattr(phone_state, "read_phone", fresh_read)
    assert_limited(send(otp_api, PHONE))  # the second read sees the first send's cooldown
    assert reads == ["stale", "fresh"]
    assert OtpAttempt.objects.count() == 1 and len(outbox) == 1
    assert RateCounter.objects.get(key="global:hour").count == 1

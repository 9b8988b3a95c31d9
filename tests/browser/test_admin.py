"""The OtpAttempt admin in a real browser: a staff login, the phones masked, no serious accessibility fault."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from otp.models import AttemptStatus, OtpAttempt
from otp.redaction import mask_phone
from tests.conftest import PHONE

OTHER_PHONE = "+442071838750"
USERNAME = "support"
PASSWORD = "a-staff-password-for-tests"
# Faults of Django's own changelist markup, not the app's; both are axe-core
# best practices rather than WCAG rules, and every other rule still runs on
# these elements.
DJANGO_CHANGELIST = [
    # The search box's <label> holds only an image (alt="Search"), no visible
    # text; with a search help text Django adds aria-describedby, which axe
    # then reads as the box's only label. Django 5.2 and 6.1 ship the same
    # admin/search_form.html.
    ("label-title-only", "#searchbar"),
    # The rows' action checkboxes share a name outside any fieldset or ARIA
    # group (each has its own aria-label). Only the axe-core that
    # axe-selenium-python ships for Python 3.11 (3.1) has this rule; axe-core 4
    # dropped it.
    ("checkboxgroup", "#result_list input.action-select"),
]


@pytest.fixture
def staff(django_user_model, settings):
    # Fast hashing: the password is hashed here and checked by the login.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return django_user_model.objects.create_superuser(USERNAME, "support@example.com", PASSWORD)


@pytest.fixture
def attempts():
    expires = timezone.now() + timedelta(minutes=5)
    return [
        OtpAttempt.objects.create(phone=phone, status=AttemptStatus.PENDING, expires_at=expires, pin_id=f"PIN-{phone}")
        for phone in (PHONE, OTHER_PHONE)
    ]


def log_in(browser: WebDriver, url: str) -> None:
    """Open ``url``, which sends an anonymous visitor to the admin's login form, and sign in there."""
    browser.get(url)
    assert "/admin/login/" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys(USERNAME)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_to_be(url))


def phone_cells(browser: WebDriver) -> list[str]:
    return [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#result_list .field-masked_phone")]


def assert_no_full_number(browser: WebDriver, *phones: str) -> None:
    page = browser.page_source
    for phone in phones:
        assert phone not in page and phone[1:] not in page


def test_staff_log_in_and_see_every_phone_masked(browser, live_server, staff, attempts, screenshot, assert_accessible):
    changelist = live_server.url + reverse("admin:otp_otpattempt_changelist")
    log_in(browser, changelist)

    assert sorted(phone_cells(browser)) == sorted([mask_phone(PHONE), mask_phone(OTHER_PHONE)])
    assert_no_full_number(browser, PHONE, OTHER_PHONE)
    screenshot("changelist")
    assert_accessible(known=DJANGO_CHANGELIST)

    browser.find_element(By.LINK_TEXT, mask_phone(PHONE)).click()
    WebDriverWait(browser, 10).until(expected_conditions.url_contains("/change/"))
    assert browser.find_element(By.CSS_SELECTOR, ".field-masked_phone .readonly").text == mask_phone(PHONE)
    assert_no_full_number(browser, PHONE)
    assert "PIN-" not in browser.page_source
    assert_accessible()


@pytest.mark.browser(language="es")
def test_a_spanish_browser_gets_the_admin_in_spanish(browser, live_server, staff, attempts, assert_accessible):
    log_in(browser, live_server.url + reverse("admin:otp_otpattempt_changelist"))
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
    assert browser.find_element(By.ID, "searchbar_helptext").text == (
        "El número de teléfono completo, en cualquier formato que acepte la API."
    )
    header = browser.find_element(By.CSS_SELECTOR, "#result_list th.column-masked_phone")
    assert header.get_attribute("textContent").strip() == "Teléfono"
    assert_accessible(known=DJANGO_CHANGELIST)

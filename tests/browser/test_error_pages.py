"""otpsite's HTML error page in a real browser: in the browser's language, with no serious accessibility fault."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.test_error_pages import ROOT


@pytest.fixture
def otpsite_urls(settings):
    """The live server serves otpsite's URLs, error handlers and templates."""
    settings.ROOT_URLCONF = "otpsite.urls"
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [ROOT / "otpsite" / "templates"]}]


@pytest.mark.parametrize(
    ("language", "heading"),
    [
        pytest.param("en", "Not found.", id="en"),
        pytest.param("es", "No encontrado.", id="es", marks=pytest.mark.browser(language="es")),
    ],
)
def test_a_missing_page_is_an_html_page_in_the_browsers_language(
    browser, live_server, otpsite_urls, language, heading, assert_accessible
):
    browser.get(live_server.url + "/no-such-page")
    assert browser.find_element(By.TAG_NAME, "h1").text == heading
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == language
    assert_accessible()

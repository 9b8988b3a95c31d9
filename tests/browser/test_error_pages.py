"""otpsite's HTML error page in a real browser: in the browser's language, with no serious accessibility fault."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By


@pytest.mark.parametrize(
    ("language", "heading"),
    [
        pytest.param("en", "Not found.", id="en"),
        pytest.param("es", "No encontrado.", id="es", marks=pytest.mark.browser(language="es")),
    ],
)
def test_a_missing_page_is_an_html_page_in_the_browsers_language(
    browser, live_server, otpsite, language, heading, assert_accessible
):
    browser.get(live_server.url + "/no-such-page")
    assert browser.find_element(By.TAG_NAME, "h1").text == heading
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == language
    assert_accessible()

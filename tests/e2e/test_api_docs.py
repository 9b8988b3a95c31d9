"""The API docs page under gunicorn with DEBUG off: every asset from the site itself, under a CSP."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest


@pytest.fixture(scope="module")
def site(launch):
    site = launch("api-docs")
    yield site
    site.stop()


def asset_urls(html: str) -> list[str]:
    """The src of every script and the href of every stylesheet and icon."""
    scripts = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", html)
    links = re.findall(r"<link[^>]*\shref=\"([^\"]+)\"", html)
    return [url.replace("&amp;", "&") for url in scripts + links]


def test_the_docs_page_loads_nothing_from_another_host(site):
    response = site.get("/api/docs/")
    assert response.status_code == 200, response.text[:500]
    html = response.text
    urls = asset_urls(html)
    assert len(urls) >= 4  # the bundle, the preset, the init script, the stylesheet
    assert all(not urlsplit(url).netloc for url in urls), urls
    assert not re.search(r"https?://|//[a-z]", html), "the page names another host"
    assert "<script>" not in html  # no inline script: the CSP would refuse it


def test_the_docs_page_allows_only_the_sites_own_scripts(site):
    policy = site.get("/api/docs/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert "frame-ancestors" in directives


def test_every_asset_of_the_docs_page_answers_from_the_site(site):
    html = site.get("/api/docs/").text
    for url in asset_urls(html):
        assert not urlsplit(url).netloc, url
        response = site.get(urljoin("/api/docs/", url))
        assert response.status_code == 200, url
        assert response.content, url
    init_script = next(url for url in asset_urls(html) if "script" in urlsplit(url).query)
    assert site.get(urljoin("/api/docs/", init_script)).headers["Content-Type"].startswith("application/javascript")


def test_the_admin_static_files_answer_too(site):
    response = site.get("/static/admin/css/base.css")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/css")

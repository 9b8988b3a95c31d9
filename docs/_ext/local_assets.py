"""Sphinx extension: warn (with -W, fail the build) when a page loads a script, stylesheet or font from another host.

The site must work offline and leak no visit to a third party, whatever the
theme or an extension adds to the pages.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


class _AssetFinder(HTMLParser):
    """Collects the URLs a page loads (not the ones it merely links to)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe") and values.get("src"):
            self.urls.append(values["src"] or "")
        elif tag == "link" and values.get("href"):
            rel = (values.get("rel") or "").lower().split()
            if {"stylesheet", "preload", "modulepreload", "icon", "prefetch"} & set(rel):
                self.urls.append(values["href"] or "")


def _external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc)


def check_assets(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    offenders: list[str] = []
    for page in sorted(Path(app.outdir).rglob("*.html")):
        finder = _AssetFinder()
        finder.feed(page.read_text(encoding="utf-8"))
        offenders += [f"{page.relative_to(app.outdir)}: {url}" for url in finder.urls if _external(url)]
    for stylesheet in sorted(Path(app.outdir).rglob("*.css")):
        text = stylesheet.read_text(encoding="utf-8", errors="replace")
        if "@import url(http" in text or "url(https://" in text or "url(http://" in text:
            offenders.append(f"{stylesheet.relative_to(app.outdir)}: a url() on another host")
    # A warning, so that the build (-W) fails and lists every offender.
    for offender in offenders:
        logger.warning("loads from another host: %s", offender, type="local_assets", subtype="external")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("build-finished", check_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

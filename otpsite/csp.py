"""A strict Content-Security-Policy on the phone verification pages.

The pages use the site's own stylesheet and one script file (WebOTP and the
resend countdown, ``otp/web/webotp.js``), no inline script or style, and post
their forms to the site itself; nothing else may load or submit.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

PAGES_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
#: The URL namespace of the pages (``otp.web.urls``).
PAGES_NAMESPACE = "otp_web"


class PagesPolicyMiddleware:
    """Adds :data:`PAGES_POLICY` to the answers of the verification pages that carry no policy of their own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None and match.namespace == PAGES_NAMESPACE and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = PAGES_POLICY
        return response

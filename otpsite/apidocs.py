"""The API docs page (Swagger UI), served from the site alone under a strict CSP.

The page is on the admin's origin, so a script on it can act as any signed-in
staff member who opens it: its assets come from the site's own static files
(drf-spectacular-sidecar, pinned by requirements.txt), and drf-spectacular's
split view serves the page's init script from its own URL, so no inline
script is needed and the policy allows only the site's own scripts.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response

# Styles may be inline: the page carries a small <style> block and Swagger UI
# styles elements as it renders; images include the stylesheet's data: icons.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ApiDocsView(SpectacularSwaggerSplitView):
    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

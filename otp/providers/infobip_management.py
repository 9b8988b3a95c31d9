"""Infobip's 2FA management endpoints: applications and their message templates.

Used by ``manage.py otp_provision``, never on the request path. It shares the
session and the answer mapping of :mod:`otp.providers.infobip`, so it sends
``Authorization: App <key>``, uses explicit timeouts, follows no redirects and
raises the same typed exceptions.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from otp.exceptions import ProviderMisconfigured, ProviderUnavailable
from otp.providers.infobip import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    build_session,
    normalize_base_url,
    request_json,
)
from otp.redaction import install_transport_log_filter

APPLICATIONS_PATH = "/2fa/2/applications"


class NotFound(ProviderMisconfigured):
    """Infobip answered 404: the application or template does not exist."""


def _segment(value: str) -> str:
    # IDs come from settings and answers; quoting keeps them one path segment.
    return quote(value, safe="")


class InfobipManagementClient:
    """GET/POST/PUT on ``/2fa/2/applications`` and ``.../{appId}/messages``."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.timeout = (float(connect_timeout), float(read_timeout))
        self.session = build_session(api_key, pool_maxsize=1)
        install_transport_log_filter()

    def __repr__(self) -> str:  # never the key
        return f"<InfobipManagementClient {self.base_url}>"

    # -- applications ----------------------------------------------------------

    def list_applications(self) -> list[dict[str, Any]]:
        return self._call("GET", APPLICATIONS_PATH, operation="list applications", expect=list)

    def get_application(self, app_id: str) -> dict[str, Any]:
        return self._call("GET", f"{APPLICATIONS_PATH}/{_segment(app_id)}", operation=f"get application {app_id}")

    def create_application(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", APPLICATIONS_PATH, body=body, operation="create application")

    def update_application(self, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            "PUT", f"{APPLICATIONS_PATH}/{_segment(app_id)}", body=body, operation=f"update application {app_id}"
        )

    # -- message templates -----------------------------------------------------

    def list_messages(self, app_id: str) -> list[dict[str, Any]]:
        return self._call(
            "GET", self._messages_path(app_id), operation=f"list templates of application {app_id}", expect=list
        )

    def get_message(self, app_id: str, msg_id: str) -> dict[str, Any]:
        return self._call(
            "GET", f"{self._messages_path(app_id)}/{_segment(msg_id)}", operation=f"get template {msg_id}"
        )

    def create_message(self, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            "POST", self._messages_path(app_id), body=body, operation=f"create template in application {app_id}"
        )

    def update_message(self, app_id: str, msg_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            "PUT", f"{self._messages_path(app_id)}/{_segment(msg_id)}", body=body, operation=f"update template {msg_id}"
        )

    # -- HTTP ------------------------------------------------------------------

    @staticmethod
    def _messages_path(app_id: str) -> str:
        return f"{APPLICATIONS_PATH}/{_segment(app_id)}/messages"

    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        body: dict[str, Any] | None = None,
        expect: type = dict,
    ) -> Any:
        data = request_json(
            self.session,
            method,
            self.base_url + path,
            body=body,
            timeout=self.timeout,
            operation=operation,
            not_found=NotFound,
            expect=expect,
        )
        if expect is list and not all(isinstance(item, dict) for item in data):
            raise ProviderUnavailable(f"Infobip {operation} answered a list of non-objects")
        return data

"""A JSON parser that reads a bounded number of bytes and nothing lenient."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from otp.conf import otp_settings
from otp.exceptions import RequestTooLarge as RequestTooLarge  # its earlier home, kept for importers


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class BoundedJSONParser(BaseParser):
    """Parses at most ``OTP['MAX_REQUEST_BYTES']`` bytes of strict UTF-8 JSON.

    DRF reads the request stream directly, so Django's
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not protect it; this parser does.
    """

    media_type = "application/json"

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = otp_settings.MAX_REQUEST_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise RequestTooLarge()
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as err:
            raise ParseError(_("Request body must be valid JSON.")) from err

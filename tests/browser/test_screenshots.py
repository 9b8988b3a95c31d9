"""scripts/screenshots keeps working: it photographs both pages of otpsite's home at the width asked."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import ROOT, require_browser

# It starts the development site and a Chromium of its own.
pytestmark = pytest.mark.slow


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


def test_the_screenshots_of_the_number_and_code_pages(tmp_path):
    require_browser()
    command = [sys.executable, "-m", "tests.browser.screenshots", "--out", str(tmp_path), "--width", "480"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    number, code = tmp_path / "enter-number.png", tmp_path / "enter-code.png"
    for page in (number, code):
        width, height = png_size(page)
        assert width == 480 and 300 < height < 1200, (page.name, width, height)
    # The code page is longer: it has the resend button and the other links.
    assert png_size(code)[1] > png_size(number)[1]

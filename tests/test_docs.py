"""The documentation keeps up with the code: every setting is in the reference, every link leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otp.conf import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "configuration.md"


def reference_rows() -> dict[str, list[str]]:
    """The cells of each table row of the configuration reference, by the name in its first cell."""
    rows = {}
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `([A-Z][A-Z0-9_]*)` \|", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
    return rows


def example_variables() -> list[str]:
    """The variables .env.example documents, set or commented out."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_every_otp_setting_is_in_the_reference_with_its_default(name):
    row = reference_rows().get(name)
    assert row is not None, f"docs/configuration.md has no row for OTP[{name!r}]"
    # key | type | default | otpsite variable | meaning
    assert row[2] == f"`{DEFAULTS[name]!r}`", f"{name}: the reference says {row[2]}, otp/conf.py {DEFAULTS[name]!r}"


def test_the_reference_lists_no_setting_the_app_does_not_have():
    otp_rows = {name for name, cells in reference_rows().items() if len(cells) == 5}
    assert otp_rows - set(DEFAULTS) == set()


@pytest.mark.parametrize("variable", example_variables())
def test_every_variable_of_env_example_is_in_the_reference(variable):
    assert f"`{variable}`" in REFERENCE.read_text(encoding="utf-8"), f"docs/configuration.md does not name {variable}"


def test_the_readme_is_a_short_front_door():
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024


@pytest.mark.parametrize("page", ["README.md", "CHANGELOG.md", "bench/README.md"])
def test_relative_links_outside_the_docs_site_lead_to_files(page):
    """Sphinx checks the links between docs pages; these files are read on GitHub and PyPI."""
    source = ROOT / page
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", source.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (source.parent / target).exists(), f"{page} links to {target}, which does not exist"

"""RELIABILITY 17: the libraries that parse untrusted input are at or above their latest security
fixes, both as installed and as the lowest version pyproject.toml allows a fresh install.

When a new advisory appears, raise the floor here and in pyproject.toml together.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# distribution -> (first fixed version, the advisory that sets it)
FLOORS: dict[str, tuple[str, str]] = {
    "jinja2": ("3.1.6", "CVE-2025-27516: sandbox escape through the |attr filter"),
    "simpleeval": ("1.0.8", "RELIABILITY.md 'Expressions': attribute and format escapes closed in 1.0.8"),
    "pyyaml": ("5.4", "CVE-2020-14343: arbitrary code execution in full_load"),
    "starlette": ("1.3.1", "CVE-2026-54283: request.form() limits ignored for url-encoded bodies"),
    "python-multipart": ("0.0.27", "CVE-2026-42561: unbounded multipart part headers"),
}


def _declared() -> dict[str, Requirement]:
    data = tomllib.loads(PYPROJECT.read_text("utf-8"))
    requirements = [Requirement(r) for r in data["project"]["dependencies"]]
    return {r.name.lower(): r for r in requirements}


def _lowest_allowed(requirement: Requirement) -> Version | None:
    lows = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=")]
    return max(lows) if lows else None


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_the_installed_version_has_the_latest_security_fix(name: str) -> None:
    fixed, advisory = FLOORS[name]
    installed = Version(version(name))
    assert installed >= Version(fixed), f"{name} {installed} predates {fixed} ({advisory})"


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_pyproject_never_allows_a_vulnerable_version(name: str) -> None:
    fixed, advisory = FLOORS[name]
    requirement = _declared().get(name)
    assert requirement is not None, f"{name} is not a declared dependency"
    lowest = _lowest_allowed(requirement)
    assert lowest is not None and lowest >= Version(fixed), (
        f"pyproject.toml allows {requirement}; raise the floor to >={fixed} ({advisory})")

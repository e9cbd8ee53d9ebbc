"""Mistakes in bundle.yaml (calendar, roles, users, locales) come back at the value that is wrong,
with a hint naming what was probably meant."""

from __future__ import annotations

from pathlib import Path

from engine.errors import Diagnostic
from tests.engine.bundle_kit import MINI, diagnostics

CALENDAR = """\
        timezone: Asia/Shanghai
        calendar:
          working_hours: ["09:00-12:00", "13:30-18:00"]
          weekend: [saturday, sunday]
        """


def bundle_errors(tmp_path: Path, extra: str) -> list[Diagnostic]:
    """The errors of MINI with `extra` (lines indented like MINI's) appended to bundle.yaml."""
    text = MINI["bundle.yaml"].rstrip() + "\n" + extra
    return [d for d in diagnostics(tmp_path, {"bundle.yaml": text}) if d.severity == "error"]


def only(found: list[Diagnostic]) -> Diagnostic:
    assert len(found) == 1, found
    return found[0]


def test_a_misspelt_weekday_is_reported_at_that_day(tmp_path: Path) -> None:
    """An error at `calendar:` left the analyst to hunt through every line under it."""
    found = only(bundle_errors(tmp_path, CALENDAR.replace("sunday]", "sundy]")))
    assert found.span is not None and (found.span.line, found.span.col) == (11, 23)
    assert "'sundy' is not a day of the week; did you mean 'sunday'?" in found.message


def test_a_malformed_working_period_is_reported_at_that_period(tmp_path: Path) -> None:
    found = only(bundle_errors(tmp_path, CALENDAR.replace('"13:30-18:00"', '"13:30-1800"')))
    assert found.span is not None and (found.span.line, found.span.col) == (10, 34)
    assert "'13:30-1800' is not a working period" in found.message


def test_an_unknown_time_zone_is_reported_at_timezone(tmp_path: Path) -> None:
    """The time zone is written at the top of bundle.yaml, not under `calendar:`."""
    found = only(bundle_errors(tmp_path, CALENDAR.replace("Asia/Shanghai", "Asia/Shangai")))
    assert found.span is not None and (found.span.line, found.span.col) == (8, 11)
    assert "unknown time zone 'Asia/Shangai'" in found.message



def test_a_misspelt_time_zone_is_told_the_zone_meant(tmp_path: Path) -> None:
    # It said "e.g. Asia/Shanghai" whatever the zone: Europe/Londn got no help.
    found = only(bundle_errors(tmp_path, CALENDAR.replace("Asia/Shanghai", "Europe/Londn")))
    assert "unknown time zone 'Europe/Londn' (did you mean 'Europe/London'?)" in found.message


def test_an_unknown_role_in_bundle_yaml_suggests_the_close_one(tmp_path: Path) -> None:
    found = only(bundle_errors(tmp_path, "        demo_users:\n          - {username: a, roles: [agnt]}\n"))
    assert found.message == "unknown role 'agnt'"
    assert found.hint == "did you mean 'agent'?"


def test_an_unknown_manager_names_the_known_users(tmp_path: Path) -> None:
    found = only(bundle_errors(tmp_path, "        demo_users:\n"
                                         "          - {username: ann, roles: [agent], manager: bob}\n"))
    assert found.message == "unknown user 'bob'"
    assert found.hint == "known users: ann"


def test_a_user_listed_twice_is_an_error_at_the_second(tmp_path: Path) -> None:
    """The second sign-in of one name silently replaced the first's roles."""
    found = only(bundle_errors(tmp_path, "        demo_users:\n"
                                         "          - {username: ann, roles: [agent]}\n"
                                         "          - {username: ann, roles: [agent]}\n"))
    assert found.span is not None and found.span.line == 10
    assert found.message == "the user 'ann' is listed twice (first at line 9)"


def test_a_default_locale_outside_the_locales_suggests_the_close_one(tmp_path: Path) -> None:
    found = only(bundle_errors(tmp_path, "        locales: [zh-CN, en]\n        default_locale: zh_CN\n"))
    assert found.hint == "did you mean 'zh-CN'?"

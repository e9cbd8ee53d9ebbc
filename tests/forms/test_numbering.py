"""Query numbers: the ones customers look up are drawn at random (RELIABILITY 45), a draw that
hits a number already taken is drawn again, and a lookup over counted numbers is a warning."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.clock import ManualClock
from forms.numbering import DRAWS, NumbersExhausted, allocate
from tests.engine.bundle_kit import MINI, diagnostics
from web.system import boot

POSTAL = Path(__file__).resolve().parents[2] / "definitions" / "postal_complaints"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
COMPLAINT = {"customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
             "occurred_at": "2026-11-20T10:30:00+08:00", "category": "transport_late", "description": "超时三天"}


def test_a_random_number_already_taken_is_drawn_again() -> None:
    drawn: list[str] = []

    def taken(number: str) -> bool:
        drawn.append(number)
        return len(drawn) < 3  # the first two draws hit records that have them

    number = allocate(None, "complaint", "TS{date:%Y%m%d}{random:6}", NOW, "Asia/Shanghai", taken)  # type: ignore[arg-type]
    assert len(drawn) == 3 and number == drawn[-1]
    assert re.fullmatch(r"TS20261123[2-9A-HJ-NP-Z]{6}", number)


def test_a_pattern_whose_every_draw_is_taken_says_to_widen_it() -> None:
    with pytest.raises(NumbersExhausted, match=r"widen its \{random:N\}"):
        allocate(None, "complaint", "T{random:1}", NOW, "Asia/Shanghai", lambda number: True)  # type: ignore[arg-type]


def test_the_retry_is_bounded() -> None:
    calls: list[str] = []
    with pytest.raises(NumbersExhausted):
        allocate(None, "complaint", "T{random:2}", NOW, "Asia/Shanghai", lambda n: calls.append(n) is None)  # type: ignore[arg-type]
    assert len(calls) == DRAWS


def test_postal_complaint_numbers_are_random_not_counted(tmp_path: Path) -> None:
    system = boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=ManualClock(NOW))
    numbers = [system.forms.submit("complaint", COMPLAINT, actor="agent").query_no for _ in range(5)]
    system.db.dispose()
    assert len(set(numbers)) == 5
    assert all(re.fullmatch(r"TS20261123[2-9A-HJ-NP-Z]{6}", str(number)) for number in numbers)
    suffixes = sorted(str(number)[-6:] for number in numbers)
    assert suffixes != [f"{n:06d}" for n in range(1, 6)]


def looked_up(numbering: str) -> str:
    """The loader kit's ticket form with a public progress lookup numbered by `numbering`."""
    form = MINI["forms/ticket.yaml"].rstrip() + "\n"  # written dedented: every line is indented alike
    form = form.replace("numbering: T{seq:4}", f"numbering: {numbering}\n        public: true\n"
                                               "        lookup: {verify: phone, digits: 4}")
    return form + "          phone:\n            type: phone\n            required: true\n"


def test_a_lookup_over_counted_numbers_is_a_warning_at_numbering(tmp_path: Path) -> None:
    found = diagnostics(tmp_path, {"forms/ticket.yaml": looked_up("T{seq:4}")})
    (warning,) = [d for d in found if d.code == "guessable-numbers"]
    assert warning.severity == "warning" and warning.span is not None and warning.span.line == 3
    assert "{random:6}" in (warning.hint or "")
    assert not [d for d in found if d.severity == "error"]


def test_a_lookup_over_random_numbers_is_not_warned_about(tmp_path: Path) -> None:
    found = diagnostics(tmp_path, {"forms/ticket.yaml": looked_up("T{date:%y%m}{random:6}")})
    assert not [d for d in found if d.code == "guessable-numbers"]


def test_numbers_drawn_in_a_block_are_kept_and_given_out_again_on_replay() -> None:
    from forms.numbering import drawing

    pattern = "TS{date:%Y%m%d}{random:6}"
    with drawing() as recorded:
        first = [allocate(None, "complaint", pattern, NOW, "Asia/Shanghai", lambda n: False)  # type: ignore[arg-type]
                 for _ in range(2)]
    assert recorded.made == first
    with drawing(recorded.made) as replayed:
        again = [allocate(None, "complaint", pattern, NOW, "Asia/Shanghai", lambda n: False)  # type: ignore[arg-type]
                 for _ in range(2)]
    assert again == first and replayed.made == first

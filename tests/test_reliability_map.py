"""docs/reference/reliability.md maps each of the 60 numbered reliability behaviours to the tests
that prove it. This keeps the map honest: every number once, and every test or script it names
really exists (found by parsing the test file, never by importing it)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "reference" / "reliability.md"
NUMBERS = range(1, 61)

_ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*)\|(.*)\|\s*$")
_CITED = re.compile(r"`((?:tests|bench)/[^`]+)`")


def rows() -> list[tuple[int, list[str]]]:
    """(number, cited tests and scripts) of every numbered row of the map's table."""
    found = []
    for line in MAP.read_text("utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            found.append((int(match.group(1)), _CITED.findall(match.group(3))))
    return found


@cache
def defined_tests(path: Path) -> frozenset[str]:
    """Every test a file defines, as `name` or `Class::name` (nested classes joined by '::')."""
    found: set[str] = set()

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.add(prefix + node.name)
            elif isinstance(node, ast.ClassDef):
                walk(node.body, f"{prefix}{node.name}::")

    walk(ast.parse(path.read_text("utf-8"), filename=str(path)).body, "")
    return frozenset(found)


def missing(cited: str) -> str | None:
    """Why `cited` (a node id or a bench script) does not exist, or None when it does."""
    file, _, name = cited.partition("::")
    path = ROOT / file
    if not path.is_file():
        return f"{file} is not a file"
    if file.startswith("bench/"):
        return None if not name else f"{cited}: cite a bench script, not a function in it"
    if not name:
        return f"{cited}: cite a test, not a whole file"
    name = name.split("[", 1)[0]  # a parametrised id names the same function
    if not name.split("::")[-1].startswith("test"):
        return f"{cited} is not a test"
    return None if name in defined_tests(path) else f"{cited}: no such test in {file}"


def test_every_number_appears_exactly_once_in_order() -> None:
    assert [n for n, _ in rows()] == list(NUMBERS)


def test_every_row_cites_at_least_one_test_or_script() -> None:
    assert [n for n, cited in rows() if not cited] == []


@pytest.mark.parametrize("number", NUMBERS)
def test_every_cited_test_and_script_exists(number: int) -> None:
    (cited,) = [c for n, c in rows() if n == number]
    assert [why for c in cited if (why := missing(c))] == []


def test_a_missing_test_is_caught() -> None:
    """The checker itself can fail: a name that is not defined, a file that is not there."""
    assert missing("tests/test_reliability_map.py::test_nothing_by_this_name") is not None
    assert missing("tests/no_such_file.py::test_x") is not None
    assert missing("bench/no_such_bench.py") is not None
    assert missing("tests/test_reliability_map.py::test_a_missing_test_is_caught") is None

"""Conditions a browser may evaluate: a safe subset translated to JSON, the rest left to the server."""

from __future__ import annotations

import pytest

from engine.expr.client import client_condition


def test_a_comparison_becomes_a_tree() -> None:
    assert client_condition('urgency == "urgent"') == ["==", ["field", "urgency"], ["lit", "urgent"]]


def test_and_or_not_and_membership_are_kept() -> None:
    tree = client_condition('not paid and (category in ("a", "b") or amount > 5000)')
    assert tree == ["and", ["not", ["field", "paid"]],
                    ["or", ["in", ["field", "category"], ["lit", ["a", "b"]]],
                     [">", ["field", "amount"], ["lit", 5000]]]]


def test_a_chained_comparison_becomes_a_conjunction() -> None:
    assert client_condition("1 < n <= 5") == ["and", ["<", ["lit", 1], ["field", "n"]],
                                              ["<=", ["field", "n"], ["lit", 5]]]


def test_yaml_style_constants_are_literals() -> None:
    assert client_condition("flag == true") == ["==", ["field", "flag"], ["lit", True]]


@pytest.mark.parametrize("source", ["len(description) > 20", "amount * 2 > 10", "created_at + 24h > now()",
                                    "record.amount > 1", "x['a'] == 1", "a if b else c"])
def test_anything_else_is_left_to_the_server(source: str) -> None:
    assert client_condition(source) is None

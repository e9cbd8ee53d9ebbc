"""RELIABILITY 58, sized for CI: concurrent public submissions while dashboards run over a large
table -> no 5xx, nothing lost, the WAL file bounded, the dashboards' rollups consistent.

The full-size run (200 clients, 60 s, 100,000 complaints) is `bench/bench_soak.py`; its result
is in bench/RESULTS.md.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.storage.checkpoint import Checkpointer

ROOT = Path(__file__).resolve().parents[2]


def _soak_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_soak", ROOT / "bench" / "bench_soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_soak"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _soak_module().run_soak(tmp_path_factory.mktemp("soak"), clients=16, seconds=8, rows=20_000)


def test_no_submission_gets_a_server_error_or_no_answer(soak: Any) -> None:
    assert soak.accepted > 0
    assert soak.failed == 0, (dict(soak.statuses), soak.dropped, dict(soak.drop_reasons))
    assert "Traceback" not in soak.server_errors


def test_every_acknowledged_submission_is_stored_and_nothing_else(soak: Any) -> None:
    assert soak.stored == soak.seeded + soak.accepted


def test_the_wal_file_stays_bounded_while_dashboards_read(soak: Any) -> None:
    # Without restarts the WAL took every frame of the run: ~100 MB in these 8 seconds.
    assert soak.report_runs > 0
    assert soak.wal_max < 2.5 * Checkpointer.RESTART_FRAMES * 4096
    assert soak.wal_final <= Checkpointer.JOURNAL_SIZE_LIMIT


def test_the_dashboards_kept_under_load_equal_the_rebuilt_ones(soak: Any) -> None:
    assert soak.mismatches == []

"""What `docket serve` and `docket worker` say as they start and stop: the addresses a server
answers at (under the public address's path, when it has one), and a worker's stop asked for
(systemctl stop) told apart from a crash in the log."""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Iterator

import pytest

from cli import main

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """`docket serve` started and stopped at once (uvicorn not run), its signal handlers put back."""
    import uvicorn

    monkeypatch.setenv("DOCKET_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("DOCKET_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield monkeypatch
    for sig, handler in kept.items():
        signal.signal(sig, handler)


def test_serve_under_a_path_says_the_local_address_with_that_path_and_the_public_one(
        served: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    served.setenv("DOCKET_PUBLIC_URL", "https://oa.example-post.cn/docket")
    port = free_port()
    assert main(["serve", str(POSTAL), "--port", str(port), "--db", f"sqlite:///{tmp_path / 'd.db'}",
                 "--no-demo", "--no-scheduler"]) == 0
    out = capsys.readouterr().out
    assert f"  open:     http://localhost:{port}/docket/\n" in out
    assert "  public:   https://oa.example-post.cn/docket/\n" in out


def test_serve_without_a_public_address_prints_no_public_line(
        served: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    served.delenv("DOCKET_PUBLIC_URL", raising=False)
    port = free_port()
    assert main(["serve", str(POSTAL), "--port", str(port), "--db", f"sqlite:///{tmp_path / 'd.db'}",
                 "--no-demo", "--no-scheduler"]) == 0
    out = capsys.readouterr().out
    assert f"  open:     http://localhost:{port}/\n" in out and "public:" not in out


def test_a_worker_stopped_by_sigterm_says_it_is_stopping_and_then_that_it_stopped(tmp_path: Path) -> None:
    from tests.test_cli import worker_stopped_by_sigterm

    out, _ = worker_stopped_by_sigterm(tmp_path, "warning")
    lines = out.splitlines()
    assert lines[-2:] == ["Docket worker: stopping; the messages being sent finish first", "Docket worker: stopped"]

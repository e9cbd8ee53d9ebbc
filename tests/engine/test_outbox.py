"""The outbox (engine/outbox.py): transactional enqueue, delivery after commit, retries with the
same message id, dead letters, and a relay killed mid-send (RELIABILITY 15, 35-39)."""

from __future__ import annotations

import email
import multiprocessing
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.backoff import RetryPolicy
from engine.clock import ManualClock
from engine.outbox import Outbox, OutboxError
from engine.storage.db import create_engine, read_transaction, transaction
from engine.storage.migrations import upgrade
from engine.storage.tables import outbox as O
from tests.engine.fake_receivers import http_receiver, loopback_registry, smtp_server
from tests.engine.timers_kit import START, make_runtime

SPAWN = multiprocessing.get_context("spawn")
POLICY = RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=30))


def channels_yaml(*, hook: str | None = None, smtp_port: int | None = None) -> str:
    out = "channels:\n  log: {type: log}\n"
    if hook:
        out += f"  hook:\n    type: webhook\n    url: {hook}\n    timeout: 0.5\n"
    if smtp_port:
        out += (f"  mail:\n    type: email\n    host: 127.0.0.1\n    port: {smtp_port}\n"
                "    security: none\n    username_env: T_SMTP_USER\n    password_env: T_SMTP_PASSWORD\n"
                "    from: 投诉中心 <complaints@example.com>\n")
    return out


def make_outbox(db: Engine, root: Path, *, environ: dict[str, str] | None = None,
                registry: Any = None, **channels: Any) -> Outbox:
    runtime = make_runtime(db, root, extra=channels_yaml(**channels), registry=registry or loopback_registry())
    return Outbox(runtime, policy=POLICY, parallel=1, environ=environ or {})


def enqueue(outbox: Outbox, **kwargs: Any) -> int:
    kwargs.setdefault("channel", "log")
    kwargs.setdefault("to", ["ops@example.com"])
    kwargs.setdefault("subject", "Complaint TS-0001 received")
    kwargs.setdefault("body", "We have received your complaint.")
    with transaction(outbox.runtime.db) as conn:
        return outbox.enqueue(conn, **kwargs)


def clock_of(outbox: Outbox) -> ManualClock:
    clock = outbox.runtime.clock
    assert isinstance(clock, ManualClock)
    return clock


def rows(db: Engine) -> list[Any]:
    with read_transaction(db) as conn:
        return conn.execute(sa.select(O).order_by(O.c.id)).all()


# -- enqueue ---------------------------------------------------------------------------------------

def test_a_rolled_back_change_sends_nothing(db_engine: Engine, tmp_path: Path) -> None:
    outbox = make_outbox(db_engine, tmp_path)
    with pytest.raises(RuntimeError):
        with transaction(db_engine) as conn:
            outbox.enqueue(conn, channel="log", to="a@example.com", subject="s", body="b")
            raise RuntimeError("the complaint could not be saved")
    assert rows(db_engine) == []
    assert outbox.deliver() == 0


def test_a_committed_message_is_delivered_once(db_engine: Engine, tmp_path: Path) -> None:
    outbox = make_outbox(db_engine, tmp_path)
    enqueue(outbox)
    assert outbox.deliver() == 1
    assert outbox.deliver() == 0
    [row] = rows(db_engine)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, START)


def test_a_key_queues_one_message_however_often_it_is_enqueued(db_engine: Engine, tmp_path: Path) -> None:
    outbox = make_outbox(db_engine, tmp_path)
    first = enqueue(outbox, key="ack:complaint:17")
    again = enqueue(outbox, key="ack:complaint:17", body="a second try")
    other = enqueue(outbox, key="ack:complaint:18")
    assert first == again != other
    assert [r.body for r in rows(db_engine)] == ["We have received your complaint."] * 2


def test_the_service_is_registered_and_log_is_always_a_channel(db_engine: Engine, tmp_path: Path) -> None:
    runtime = make_runtime(db_engine, tmp_path, registry=loopback_registry())
    outbox = Outbox(runtime)
    assert runtime.services["outbox"] is outbox
    assert set(outbox.channels) == {"log"}


@pytest.mark.parametrize("bad, message", [
    ({"channel": "fax"}, "unknown channel 'fax'; configured channels: log"),
    ({"to": [1]}, "recipients must be text"),
    ({"data": {"at": START}}, "not JSON data"),
    ({"key": "k" * 201}, "1 to 200 characters"),
])
def test_bad_messages_are_refused_at_enqueue(db_engine: Engine, tmp_path: Path, bad: dict[str, Any],
                                             message: str) -> None:
    outbox = make_outbox(db_engine, tmp_path)
    with pytest.raises(OutboxError, match=message):
        enqueue(outbox, **bad)


# -- retries with the same id (RELIABILITY 36) -----------------------------------------------------

def test_a_webhook_answering_500_then_timing_out_then_200_is_delivered_with_backoff_and_one_id(
        db_engine: Engine, tmp_path: Path) -> None:
    with http_receiver(500, "hang", 200) as receiver:
        outbox = make_outbox(db_engine, tmp_path, hook=f"{receiver.url}/hook")
        clock = clock_of(outbox)
        enqueue(outbox, channel="hook", data={"query_number": "TS-0001"})
        assert outbox.deliver() == 0  # 500
        [row] = rows(db_engine)
        assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, START + timedelta(seconds=30))
        assert "HTTP 500" in row.last_error
        assert outbox.deliver() == 0  # not before its backoff
        clock.advance(timedelta(seconds=30))
        assert outbox.deliver() == 0  # the receiver hangs: the client times out
        [row] = rows(db_engine)
        assert "timed out" in row.last_error
        assert row.next_attempt_at == clock.now() + timedelta(minutes=1)  # backoff doubles
        clock.advance(timedelta(minutes=1))
        assert outbox.deliver() == 1
    [row] = rows(db_engine)
    assert (row.status, row.attempts) == ("sent", 3)
    assert len(receiver.requests) == 3
    assert receiver.ids() == [row.message_id] * 3
    assert {r.json()["id"] for r in receiver.requests} == {row.message_id}
    assert receiver.requests[-1].json()["data"] == {"query_number": "TS-0001"}


def test_a_failing_channel_is_dead_lettered_without_blocking_others(db_engine: Engine, tmp_path: Path) -> None:
    """RELIABILITY 38: bad SMTP credentials."""
    with smtp_server(password="right") as smtp:
        environ = {"T_SMTP_USER": "docket", "T_SMTP_PASSWORD": "wrong"}
        outbox = make_outbox(db_engine, tmp_path, smtp_port=smtp.port, environ=environ)
        clock = clock_of(outbox)
        mail = enqueue(outbox, channel="mail", to="customer@example.com")
        for _ in range(3):
            enqueue(outbox, channel="log")
            outbox.deliver()
            clock.advance(timedelta(hours=1))
        assert outbox.deliver() == 0
        [dead] = outbox.dead_letters()
        assert (dead.id, dead.status, dead.attempts) == (mail, "dead", 3)
        assert "rejected the credentials: 535" in (dead.last_error or "")
        assert smtp.logins and smtp.mails == []
        assert outbox.stats()["sent"] == 3  # the log messages went out meanwhile

        environ["T_SMTP_PASSWORD"] = "right"  # the operator fixes the secret, then retries
        assert outbox.retry(mail) is True
        assert outbox.retry(mail) is False
        assert outbox.deliver() == 1
    assert outbox.dead_letters() == []
    assert [m.recipients for m in smtp.mails] == [["customer@example.com"]]


def test_a_refused_webhook_target_is_dead_at_once(db_engine: Engine, tmp_path: Path) -> None:
    from engine.channels.log import LogChannel
    from engine.channels.webhook import WebhookChannel
    from engine.registry import Registry

    registry = Registry()
    registry.channels.add(LogChannel())
    registry.channels.add(WebhookChannel())  # the default: no internal network allowed
    with http_receiver(200) as receiver:
        outbox = make_outbox(db_engine, tmp_path, hook=f"{receiver.url}/hook", registry=registry)
        enqueue(outbox, channel="hook")
        assert outbox.deliver() == 0
    [dead] = outbox.dead_letters()
    assert dead.attempts == 1 and "resolves to 127.0.0.1, an internal address" in (dead.last_error or "")
    assert receiver.requests == []


def test_a_missing_secret_names_its_environment_variable(db_engine: Engine, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    with smtp_server() as smtp:
        outbox = make_outbox(db_engine, tmp_path, smtp_port=smtp.port, environ={})
        assert "T_SMTP_USER is not set" in caplog.text  # warned at start
        enqueue(outbox, channel="mail")
        outbox.deliver()
    [row] = rows(db_engine)
    assert row.last_error == ("DeliveryError: environment variable T_SMTP_USER "
                              "(channels.mail.username_env) is not set")


def test_a_dry_run_does_not_warn_about_credentials_it_never_uses(db_engine: Engine, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    runtime = make_runtime(db_engine, tmp_path, extra=channels_yaml(smtp_port=2525), registry=loopback_registry())
    Outbox(runtime, policy=POLICY, parallel=1, environ={}, dry_run=True)
    assert "messages are logged, not sent" in caplog.text
    assert "is not set" not in caplog.text


def test_an_e_mail_subject_cannot_add_headers(db_engine: Engine, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """RELIABILITY 15: an answer `x\\r\\nBcc: victim@example.com` in the subject."""
    with smtp_server() as smtp:
        environ = {"T_SMTP_USER": "docket", "T_SMTP_PASSWORD": "right"}
        outbox = make_outbox(db_engine, tmp_path, smtp_port=smtp.port, environ=environ)
        enqueue(outbox, channel="mail", to="customer@example.com",
                subject="Re: x\r\nBcc: victim@example.com", body="Hello")
        assert outbox.deliver() == 1
    [mail] = smtp.mails
    assert mail.recipients == ["customer@example.com"]
    parsed = email.message_from_bytes(mail.data)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Re: x Bcc: victim@example.com"
    assert "line breaks removed from the subject" in caplog.text


# -- a receiver's answer (Outbox.on_reply) --------------------------------------------------------

def test_a_receivers_json_answer_reaches_the_reply_handler_in_the_sending_transaction(
        db_engine: Engine, tmp_path: Path) -> None:
    seen: list[tuple[str, Any, bool]] = []
    with http_receiver(("json", 200, {"voucher": "V-7"})) as receiver:
        outbox = make_outbox(db_engine, tmp_path, hook=receiver.url)
        outbox.on_reply("note", lambda conn, message, answer: seen.append(
            (message.reply["about"], answer, conn.in_transaction())))
        enqueue(outbox, channel="hook", reply={"kind": "note", "about": "TS-0001"})
        assert outbox.deliver() == 1
    assert seen == [("TS-0001", {"voucher": "V-7"}, True)]
    assert "reply" not in receiver.requests[0].json()  # what to do with the answer stays here


def test_a_reply_handler_that_fails_leaves_the_message_sent_and_says_why(
        db_engine: Engine, tmp_path: Path) -> None:
    def broken(conn: Any, message: Any, answer: Any) -> None:
        raise ValueError("the record was deleted")

    with http_receiver(("json", 200, {})) as receiver:
        outbox = make_outbox(db_engine, tmp_path, hook=receiver.url)
        outbox.on_reply("note", broken)
        enqueue(outbox, channel="hook", reply={"kind": "note"})
        assert outbox.deliver() == 1
        assert outbox.deliver() == 0  # not sent again: that would not mend the handler
    [row] = rows(db_engine)
    assert row.status == "sent"
    assert row.last_error == "sent; the answer was not applied: ValueError: the record was deleted"


def test_a_reply_no_handler_applies_is_refused_at_enqueue(db_engine: Engine, tmp_path: Path) -> None:
    outbox = make_outbox(db_engine, tmp_path)
    with pytest.raises(OutboxError, match="no handler applies replies of kind 'voucher'"):
        enqueue(outbox, reply={"kind": "voucher"})
    assert rows(db_engine) == []


def test_a_dry_run_applies_no_answer(db_engine: Engine, tmp_path: Path) -> None:
    seen: list[Any] = []
    outbox = make_outbox(db_engine, tmp_path, hook="https://erp.example.com/hook",
                         environ={"DOCKET_OUTBOX_DRY_RUN": "1"})
    outbox.on_reply("note", lambda conn, message, answer: seen.append(answer))
    enqueue(outbox, channel="hook", reply={"kind": "note"})
    assert outbox.deliver() == 1
    assert seen == []  # nobody answered: a logged message has no receiver


# -- a relay killed after the receiver's 200 (RELIABILITY 37) --------------------------------------

def _deliver_then_die(url: str, root: str, hook: str) -> None:
    """Separate process: send through the real webhook channel, then SIGKILL before the row is
    marked sent."""
    from engine.channels.log import LogChannel
    from engine.channels.webhook import WebhookChannel
    from tests.engine.fake_receivers import LOOPBACK

    class DieAfterSend(WebhookChannel):
        def send(self, message: Any, settings: Any) -> None:
            super().send(message, settings)
            os.kill(os.getpid(), signal.SIGKILL)

    registry = loopback_registry()
    registry.channels = type(registry.channels)("channel")
    registry.channels.add(DieAfterSend(LOOPBACK))
    registry.channels.add(LogChannel())
    db = create_engine(url)
    outbox = make_outbox(db, Path(root) / "dying", hook=hook, registry=registry)
    outbox.deliver()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_relay_killed_after_the_receivers_200_resends_once_with_the_same_id_and_counts_it(
        database: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue(f"{database}_url")
    db = create_engine(url)
    upgrade(db)
    with http_receiver(200) as receiver:
        hook = f"{receiver.url}/hook"
        outbox = make_outbox(db, tmp_path / "relay", hook=hook)
        enqueue(outbox, channel="hook")
        relay = SPAWN.Process(target=_deliver_then_die, args=(url, str(tmp_path), hook))
        relay.start()
        relay.join(60)
        assert relay.exitcode == -9
        assert len(receiver.requests) == 1  # the receiver has it...
        [row] = rows(db)
        assert row.status == "sending"  # ...but the dead relay never recorded it
        assert outbox.deliver() == 0  # within the dead relay's lease
        clock_of(outbox).advance(outbox.lease)
        assert outbox.deliver() == 1
        assert outbox.deliver() == 0
    assert len(receiver.requests) == 2
    assert len(set(receiver.ids())) == 1  # same event id: the receiver can drop the duplicate
    assert outbox.stats() == {"pending": 0, "sending": 0, "sent": 1, "dead": 0, "possible_duplicates": 1}
    assert outbox.entries()[0].duplicates == 1
    db.dispose()


def test_several_relays_never_send_one_message_twice(db_engine: Engine, tmp_path: Path) -> None:
    with http_receiver(200) as receiver:
        relays = [make_outbox(db_engine, tmp_path / f"r{i}", hook=f"{receiver.url}/hook") for i in range(3)]
        ids = [enqueue(relays[0], channel="hook", key=f"m{i}") for i in range(30)]
        sent = sum(relay.deliver(limit=7) for _ in range(5) for relay in relays)
    assert sent == 30
    assert len(receiver.requests) == 30 and len(set(receiver.ids())) == 30
    assert {r.status for r in rows(db_engine)} == {"sent"} and len(ids) == 30


# -- operations ------------------------------------------------------------------------------------

def test_a_dry_run_logs_every_message_instead_of_sending_it(db_engine: Engine, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with smtp_server() as smtp:
        outbox = make_outbox(db_engine, tmp_path, smtp_port=smtp.port,
                             environ={"DOCKET_OUTBOX_DRY_RUN": "1"})
        enqueue(outbox, channel="mail", to="customer@example.com", subject="TS-0001 已受理")
        with caplog.at_level(logging.INFO, logger="docket.notify"):
            assert outbox.deliver() == 1
    assert smtp.mails == [] and smtp.logins == []
    assert "TS-0001 已受理" in caplog.text


def test_sent_messages_are_purged_after_their_retention_but_dead_letters_stay(
        db_engine: Engine, tmp_path: Path) -> None:
    outbox = make_outbox(db_engine, tmp_path, hook="http://127.0.0.1:9/never")
    enqueue(outbox)
    outbox.deliver()
    dead = enqueue(outbox, channel="hook")
    clock = clock_of(outbox)
    for _ in range(3):
        outbox.deliver()
        clock.advance(timedelta(hours=1))
    clock.advance(timedelta(days=31))
    assert outbox.purge_sent(older_than=timedelta(days=30)) == 1
    assert [r.id for r in rows(db_engine)] == [dead]

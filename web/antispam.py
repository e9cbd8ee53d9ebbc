"""Anti-spam for public forms, with no third-party service.

Each rendered public form carries a signed ticket: the instant it was rendered and a random
submission key. On submit the ticket must verify, be at least `MIN_FILL_SECONDS` old (bots post
at once) and at most a day old; a hidden honeypot input must be empty (bots fill every input).
The submission key doubles as the idempotency key, so a double click or a network retry of the
same page returns the first record instead of creating a second one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, Signer

MIN_FILL_SECONDS = 3
MAX_AGE = timedelta(days=1)
HONEYPOT = "website"
TICKET = "_ticket"


class SpamSuspected(Exception):
    """The submission looks automated or forged; the message is safe to show."""

    human: bool = False
    """A person may well have caused it (a quick resend, a form left open overnight): the page
    is then shown again with what they typed, instead of a bare refusal."""


class TooQuick(SpamSuspected):
    """Sent sooner than a person fills the form in (or resent at once after fixing an error)."""

    human = True


class Expired(SpamSuspected):
    """The form was rendered more than a day ago."""

    human = True


class Unreadable(SpamSuspected):
    """The ticket does not verify: altered, missing, or signed with another key (a server whose
    secret changed while the customer was typing, a balancer's server with a different
    DOCKET_SECRET_KEY). A person loses nothing for it: the page is shown again with a fresh one."""

    human = True


@dataclass(frozen=True)
class Ticket:
    rendered_at: datetime
    key: str


class TicketSigner:
    """Issues and checks the signed tickets of public forms."""

    def __init__(self, secret: str | bytes):
        self._signer = Signer(secret, salt="docket.public-form")

    def issue(self, form: str, now: datetime) -> str:
        payload = f"{form}|{int(now.timestamp())}|{secrets.token_urlsafe(18)}"
        return self._signer.sign(payload).decode()

    def check(self, form: str, ticket: str, now: datetime, honeypot: str) -> Ticket:
        """The verified ticket, or SpamSuspected."""
        if honeypot:
            raise SpamSuspected("the submission was refused as automated")
        try:
            payload = self._signer.unsign(ticket.encode()).decode()
            ticket_form, stamp, key = payload.split("|")
            rendered = datetime.fromtimestamp(int(stamp), tz=now.tzinfo)
        except (BadSignature, ValueError, UnicodeDecodeError):
            raise Unreadable("the form has expired or was altered; reload it and try again") from None
        if ticket_form != form:
            raise SpamSuspected("the form has expired or was altered; reload it and try again")
        age = now - rendered
        if age < timedelta(seconds=MIN_FILL_SECONDS):
            raise TooQuick("the form was sent too quickly; please check it and send again")
        if age > MAX_AGE:
            raise Expired("the form has expired; reload it and try again")
        return Ticket(rendered, key)

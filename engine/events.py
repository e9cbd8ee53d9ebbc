"""In-transaction events: the one runtime channel from a lower engine to a higher one.

Forms publish `record.created`; flows subscribe and start an instance; rules subscribe to
everything. Handlers run synchronously inside the publisher's transaction, so a record, the
flow it starts and the messages a rule queues commit together or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping

from sqlalchemy.engine import Connection

Handler = Callable[["Event", Connection], None]


@dataclass(frozen=True)
class Event:
    """Something that happened: `name` like `record.created`, `task.completed`, `flow.entered`."""

    name: str
    at: datetime
    form: str | None = None
    record_id: int | None = None
    actor: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


class EventBus:
    """Subscribers by event name ('*' receives every event), called in subscription order."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self.depth_limit = 20

    def subscribe(self, name: str, handler: Handler) -> None:
        self._handlers[name].append(handler)

    def publish(self, event: Event, conn: Connection) -> None:
        """Run every handler of the event inside the caller's transaction."""
        depth = conn.info.get("docket_event_depth", 0)
        if depth >= self.depth_limit:
            # A rule that updates a record that fires the rule again must not loop forever.
            raise RecursionError(f"events nested deeper than {self.depth_limit} while publishing {event.name}")
        conn.info["docket_event_depth"] = depth + 1
        try:
            for handler in (*self._handlers.get(event.name, ()), *self._handlers.get("*", ())):
                handler(event, conn)
        finally:
            conn.info["docket_event_depth"] = depth

"""The running system's shared parts: the bundle, the database, the clock and the event bus."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from engine.bundle import Bundle
from engine.clock import Clock
from engine.events import EventBus


@dataclass
class Runtime:
    """Passed to every engine service; built once in a composition root (cli.py, web.app)."""

    bundle: Bundle
    db: Engine
    clock: Clock
    bus: EventBus = field(default_factory=EventBus)
    services: dict[str, Any] = field(default_factory=dict)
    """Engine services by name ('forms', 'flows', ...), for expression functions and the web."""

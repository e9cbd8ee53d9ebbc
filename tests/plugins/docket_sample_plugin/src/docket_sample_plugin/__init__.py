"""A sample third-party Docket plugin (see docs/plugins.md).

Docket finds it through the `docket.plugins` entry point declared in pyproject.toml, which names
`register` below; Docket calls it once with the `Registry` it is building.
"""

from __future__ import annotations

from typing import Any

from docket_sample_plugin.audit import RandomAudit
from docket_sample_plugin.functions import MASK_PHONE

SOURCE = "docket-sample-plugin"
"""How this plugin is named in registry errors (a name clash names both sources)."""


def register(registry: Any) -> None:
    """Add the plugin's types to Docket's registry."""
    registry.node_types.add(RandomAudit(), source=SOURCE)
    registry.functions.add(MASK_PHONE, source=SOURCE)


__all__ = ["MASK_PHONE", "RandomAudit", "register"]

"""On/off settings in the environment (DOCKET_SECURE_COOKIES, DOCKET_OUTBOX_DRY_RUN, DOCKET_DEMO):
one reading of them for every place that looks, so `True`, ` 1` and `on` mean what they say
everywhere, and `docket serve` warns about exactly the values this reading does not take."""

from __future__ import annotations

import os
from typing import Mapping

ON_WORDS = ("1", "true", "yes", "on")
OFF_WORDS = ("0", "false", "no", "off")


def switch(name: str, environ: Mapping[str, str] | None = None) -> bool | None:
    """True or False for a value among `ON_WORDS` or `OFF_WORDS` (any case, spaces ignored);
    None when unset, empty, or any other word (which callers take as off, and `docket serve`
    warns about)."""
    value = (os.environ if environ is None else environ).get(name, "").strip().lower()
    return True if value in ON_WORDS else False if value in OFF_WORDS else None


def switched_on(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the setting `name` is on (see `switch`)."""
    return switch(name, environ) is True

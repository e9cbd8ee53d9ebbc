"""The built-in action types, registered in `registry.actions` by `rules.register`."""

from rules.actions.flow import Assign, Escalate, StartFlow
from rules.actions.messages import Notify, Webhook
from rules.actions.record import CreateRecord, Decide, Recommend, SetFields, Tag

BUILT_IN_ACTIONS = (SetFields, Assign, Escalate, StartFlow, CreateRecord, Tag, Notify, Webhook,
                    Recommend, Decide)

__all__ = ["BUILT_IN_ACTIONS"]

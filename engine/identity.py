"""Who is acting: the `Principal` every permission check and every engine command is given.

The web layer turns a session cookie or an API token into a Principal; timers and rules act as
`Principal.system()`. Engines never look at cookies or tokens, only at this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SYSTEM_USERNAME = "system"

CUSTOMER_ACTOR = "~customer"
"""Who answered a step from the public progress lookup (a flow task with `customer:`): the
customer, who has no account. No username can be this (a username starts with a letter or a
digit), so it is never mistaken for, or given the rights of, a staff member."""


@dataclass(frozen=True)
class Principal:
    """A signed-in user (or the system itself) with the roles and departments they hold.

    `departments` includes the sub-departments of the user's own department, so a manager of
    Operations also sees what its Exception team handles.
    """

    username: str
    roles: frozenset[str] = field(default_factory=frozenset)
    departments: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    display_name: str = ""
    user_id: int | None = None
    department: str | None = None
    """The user's own department (without the sub-departments)."""

    @classmethod
    def system(cls) -> "Principal":
        """The engines acting on their own (timers, rules): sees and may do everything."""
        return cls(SYSTEM_USERNAME, is_admin=True, display_name="system")

    @property
    def is_system(self) -> bool:
        return self.username == SYSTEM_USERNAME and self.user_id is None

    def has_role(self, *names: str) -> bool:
        """True if the principal holds any of the roles (admins hold every role)."""
        return self.is_admin or any(name in self.roles for name in names)

"""The change-request state machine: the only way ``ChangeRequest.state`` changes.

Services call ``transition`` on a row they locked with ``select_for_update``; a transition from
a state that does not allow it raises ``ValidationError`` (e.g. approving a change another
officer just rejected), so concurrent decisions cannot both take effect.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from workflows.changes.models import ChangeRequest, ChangeState

S = ChangeState
OPEN = (S.DRAFT, S.SUBMITTED, S.IN_REVIEW, S.APPROVED)

TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "submit": ((S.DRAFT,), S.SUBMITTED),
    "review": ((S.SUBMITTED, S.IN_REVIEW), S.IN_REVIEW),
    "approve": ((S.SUBMITTED, S.IN_REVIEW), S.APPROVED),
    "reject": ((S.SUBMITTED, S.IN_REVIEW), S.REJECTED),
    "withdraw": ((S.DRAFT, S.SUBMITTED, S.IN_REVIEW, S.APPROVED), S.WITHDRAWN),
    "apply": ((S.APPROVED,), S.APPLIED),
    "supersede": (OPEN, S.SUPERSEDED),
}


def transition(change: ChangeRequest, name: str) -> str:
    """Move ``change`` (locked by the caller) along ``name``; return the state it left."""
    sources, target = TRANSITIONS[name]
    if change.state not in sources:
        raise ValidationError(
            {
                "state": f"This change is already {change.get_state_display().lower()}; '{name}' is not possible now."
            }
        )
    previous = change.state
    change.state = target
    change.save(update_fields=["state"])
    return previous

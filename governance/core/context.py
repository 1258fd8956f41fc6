"""Who is acting and on behalf of which request, carried through a request or a task.

The middleware binds a context for each request; services and the ledger read it so that an
audit event names its request id, source address and user agent without every caller passing
them along. Tasks and management commands bind their own context (``bind_context``).
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ActorContext:
    """Facts about the current request or job that every audit event carries."""

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ip: str | None = None
    user_agent: str = ""
    actor: Any = None
    denials: list[Any] = field(default_factory=list)
    # The decision point's per-request cache of each actor's grants, keyed by user id.
    grants: dict[Any, Any] = field(default_factory=dict)
    # Other per-request memos of the decision point (policies in force per workspace).
    memo: dict[Any, Any] = field(default_factory=dict)


_current: contextvars.ContextVar[ActorContext | None] = contextvars.ContextVar("actor_context", default=None)


def current_context() -> ActorContext | None:
    """Return the context bound to this request or job, if any."""
    return _current.get()


@contextlib.contextmanager
def bind_context(context: ActorContext) -> Iterator[ActorContext]:
    """Bind ``context`` for the duration of the block."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)

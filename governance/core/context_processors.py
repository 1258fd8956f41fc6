"""Template context: why the current request was refused, for the 403 page."""

from __future__ import annotations

from governance.core.context import current_context


def denial_reasons(request) -> dict:
    context = current_context()
    if context is None or not context.denials:
        return {}
    # The last refusal about a specific object is the one the person ran into.
    specific = [d for d in context.denials if d.target is not None] or context.denials
    return {"denial_reason": specific[-1].message}

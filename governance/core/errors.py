"""Errors that carry what a person should be told, so that the kernel's error pages and API
handler can answer them without knowing the app that raised them."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied


class ExplainedError(Exception):
    """An error that knows its HTTP status and the words a person sees (``explain``) and the
    logger that gets the operator's detail (``log_name``). Never carries secrets."""

    log_name = "governance"

    def explain(self) -> tuple[int, str]:
        return 500, "Something went wrong on our side. Nothing was changed."


class ReasonedRefusal(PermissionDenied):
    """A refusal whose message is meant to be shown to the person refused."""

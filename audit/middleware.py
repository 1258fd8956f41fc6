"""The ledger's middleware: the acting user into the request's context, refused sensitive actions
into the ledger."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from audit.services import denials_record
from governance.core.context import current_context


class ActorContextMiddleware:
    """Name the authenticated user in the context and record refused sensitive actions.

    The decision point notes each denial of a sensitive action in the context. When the
    response is a refusal (403), those denials go to the ledger: by then the transaction of the
    refused operation has been rolled back, so the denial record is not lost with it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        context = current_context()
        user = getattr(request, "user", None)
        if context is not None and user is not None and user.is_authenticated:
            context.actor = user
        response = self.get_response(request)
        sensitive = (
            [decision for decision in context.denials if decision.sensitive] if context is not None else []
        )
        if sensitive and response.status_code == 403:
            denials_record(decisions=sensitive)
        return response

"""Every API request a service account makes is a ledger event, with the status it got."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from workflows.service_accounts.services import service_account_use_record


class ServiceAccountUsageMiddleware:
    """Record ``service_account.used`` after a request that a service account's token authenticated.

    The API's authentication marks the request; the record is written once the response (and so
    its status) is known, in its own transaction.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        principal = getattr(request, "service_account_principal", None)
        if principal is not None:
            service_account_use_record(
                principal=principal, method=request.method, path=request.path, status=response.status_code
            )
        return response

"""The evidence package download: a signed link, checked and recorded before the file is served."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render
from django.urls import reverse

from audit.evidence.links import (
    LinkRefusedError,
    evidence_download_deny,
    evidence_download_record,
    evidence_link_check,
)
from audit.evidence.orders import evidence_download_name, evidence_path


def evidence_download(request: HttpRequest, token: str) -> HttpResponse:
    """Serve an evidence package from a signed link issued to the signed-in person (see links.py)."""
    if request.method != "GET":  # every request that would serve the file is a recorded download
        return HttpResponseNotAllowed(["GET"])
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    try:
        order = evidence_link_check(token=token, user=request.user)
    except LinkRefusedError as refused:
        evidence_download_deny(actor=request.user, refused=refused)
        return render(
            request, "audit/evidence_download_refused.html", {"refused": refused}, status=refused.status
        )
    evidence_download_record(actor=request.user, order=order)
    response = FileResponse(
        open(evidence_path(order), "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=evidence_download_name(order),
        content_type="application/zip",
    )
    response["Cache-Control"] = "no-store"
    return response

"""The ledger's public material (key, latest tree head) and the download of evidence packages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from audit.canonical import format_time
from audit.evidence.links import (
    LinkRefusedError,
    evidence_download_deny,
    evidence_download_record,
    evidence_link_check,
)
from audit.evidence.orders import evidence_download_name, evidence_path
from audit.models import SignedTreeHead
from audit.signing import key_id_of, load_signing_key, public_key_pem
from governance.access.decision import decide


@require_GET
def public_key(request: HttpRequest) -> HttpResponse:
    """The Ed25519 public key that signs tree heads (PEM), with its key id in a header."""
    key = load_signing_key().public_key()
    response = HttpResponse(public_key_pem(key), content_type="application/x-pem-file")
    response["X-Ledger-Key-Id"] = key_id_of(key)
    return response


@login_required
@require_GET
def latest_tree_head(request: HttpRequest) -> JsonResponse:
    """The latest signed tree head, for those who may read the ledger."""
    if not decide(request.user, "audit.view").allowed:
        return JsonResponse({"detail": "You may not read the audit ledger."}, status=403)
    head = SignedTreeHead.objects.order_by("-number").first()
    if head is None:
        return JsonResponse({"detail": "No tree head has been signed yet."}, status=404)
    return JsonResponse(
        {
            "number": head.number,
            "tree_size": head.tree_size,
            "root_hash": bytes(head.root_hash).hex(),
            "issued_at": format_time(head.issued_at),
            "key_id": head.key_id,
            "signature": bytes(head.signature).hex(),
        }
    )


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
